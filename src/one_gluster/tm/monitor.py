"""TM `monitor` of a gluster system datastore: the volume's capacity on stdout and, when oned asks
(MONITOR_VM_DISKS=1), each VM's disk and snapshot sizes sent to monitord as `MONITOR_VM`."""

from __future__ import annotations

import base64
import os
import re

from one_gluster.core import log, monitord, sizes, snapshot_store
from one_gluster.core.ds_request import read_ds_request
from one_gluster.core.errors import DriverError
from one_gluster.core.tm_request import TmCall
from one_gluster.core.volume import MountedPath, Volume, require_mount, require_some_mount

_DISK = re.compile(r"^disk\.(\d+)$")


def _mb(path: str) -> int:
    """`du -mL`: blocks in use, following a link to a persistent image, rounded up to MB."""
    return sizes.ceil_mb(os.stat(path).st_blocks * 512)


def vm_disks(base: str) -> list[str]:
    """One `VM=[ID=<id>, MONITOR="<base64>"]` per VM directory with disks, as the qcow2 TM reports."""
    reports = []
    for vm in sorted((e for e in os.listdir(base) if e.isdigit()), key=int):
        vm_dir = os.path.join(base, vm)
        attrs = []
        for disk in sorted(os.listdir(vm_dir) if os.path.isdir(vm_dir) else []):
            match = _DISK.match(disk)
            path = os.path.join(vm_dir, disk)
            if not match or not os.path.exists(path):
                continue
            attrs.append(f"DISK_SIZE = [ ID={match.group(1)}, SIZE={_mb(path)}]")
            snaps = snapshot_store.folder(os.path.realpath(path))   # raw snapshot copies (qcow2: inside the disk)
            for snap in sorted((s for s in os.listdir(snaps) if s.isdigit()), key=int) if os.path.isdir(snaps) else []:
                attrs.append(f"SNAPSHOT_SIZE = [ ID={snap}, DISK_ID={match.group(1)}, "
                             f"SIZE={_mb(os.path.join(snaps, snap))}]")
        if attrs:
            encoded = base64.b64encode((" ".join(attrs) + "\n").encode()).decode()
            reports.append(f'VM=[ID={vm}, MONITOR="{encoded}"]')
    return reports


def monitor(call: TmCall) -> str:
    req = read_ds_request(call.args, call.stdin)
    ds = req.datastore
    base = f"{req.datastore_location.rstrip('/')}/{ds.id}" if req.datastore_location else ds.require_base_path()
    mounted: MountedPath = (require_mount(base, Volume.from_template(ds.template))
                            if ds.template.get("GLUSTER_VOLUME") else require_some_mount(base))
    usage = mounted.usage()
    if req.monitor_vm_disks:
        try:
            monitord.send("MONITOR_VM", True, -1, "\n".join(vm_disks(mounted.path)))
        except (DriverError, OSError) as exc:
            log.error(f"VM disk sizes not sent to monitord: {exc}")
    return usage

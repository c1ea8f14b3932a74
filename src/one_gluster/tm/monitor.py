"""TM `monitor` of a gluster system datastore: the volume's capacity on stdout and, when oned asks
(MONITOR_VM_DISKS=1), each VM's disk and snapshot sizes sent to monitord as `MONITOR_VM`."""

from __future__ import annotations

import base64
import os
import re
from typing import Optional

from one_gluster.core import log, monitord, sizes, snapshot_store
from one_gluster.core.ds_request import read_ds_request
from one_gluster.core.errors import DriverError
from one_gluster.core.tm_request import TmCall
from one_gluster.core.volume import MountedPath, Volume, require_mount, require_some_mount

_DISK = re.compile(r"^disk\.(\d+)$")


def _mb(blocks: int) -> int:
    """`du -mL`: blocks in use (of the disk, or of the persistent image it links to), in MB rounded up."""
    return sizes.ceil_mb(blocks * 512)


def vm_disks(base: str) -> list[str]:
    """One `VM=[ID=<id>, MONITOR="<base64>"]` per VM directory with disks, as the qcow2 TM reports,
    in VM id order. Each VM directory is listed once and each disk asked about once (the listings
    carry entry types and, through FUSE's readdirplus, attributes), persistent disks' snapshot folders
    are looked up in one listing of their image datastore, and the VM directories are read by a few
    threads at once: each listing is a round trip to the bricks."""
    from concurrent.futures import ThreadPoolExecutor

    with os.scandir(base) as entries:
        vms = sorted((e.name for e in entries if e.name.isdigit() and e.is_dir(follow_symlinks=False)), key=int)
    images = _Listings()
    with ThreadPoolExecutor(THREADS) as workers:
        return [r for r in workers.map(lambda vm: _vm_report(os.path.join(base, vm), images), vms) if r]


THREADS = 4      # VM directories read at once (more gain nothing on 2 cores: the bricks and client are busy)


class _Listings:
    """The directories persistent disks link into (image datastores), each listed once: their images'
    sizes and snapshot folders come from that listing, with no lookup per disk."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, os.DirEntry]] = {}

    def entry(self, path: str) -> Optional[os.DirEntry]:
        directory, name = os.path.split(path)
        entries = self._entries.get(directory)
        if entries is None:
            try:
                with os.scandir(directory) as listing:
                    entries = {e.name: e for e in listing}
            except OSError:
                entries = {}
            self._entries[directory] = entries          # two threads may both list it: the same answer
        return entries.get(name)


def _vm_report(vm_dir: str, images: _Listings) -> str:
    """The VM= line of one VM directory ("" when it holds no disk)."""
    try:
        with os.scandir(vm_dir) as listing:
            entries = {e.name: e for e in listing}
    except (FileNotFoundError, NotADirectoryError):      # removed meanwhile
        return ""
    attrs = []
    for name in sorted(entries):
        match = _DISK.match(name)
        if not match:
            continue
        disk = entries[name]
        if disk.is_symlink():                  # a persistent disk: its image, listed with its datastore
            target = os.path.normpath(os.path.join(vm_dir, os.readlink(disk.path)))
            image = images.entry(target)
            if image is None:                  # a dangling link
                continue
            disk, snapshots = image, images.entry(snapshot_store.folder(target)) is not None
        else:
            snapshots = os.path.basename(snapshot_store.folder(disk.path)) in entries
        try:
            blocks = disk.stat().st_blocks
        except FileNotFoundError:              # removed meanwhile
            continue
        disk_id = match.group(1)
        attrs.append(f"DISK_SIZE = [ ID={disk_id}, SIZE={_mb(blocks)}]")
        for snap, snap_blocks in _raw_snapshots(disk.path) if snapshots else ():
            attrs.append(f"SNAPSHOT_SIZE = [ ID={snap}, DISK_ID={disk_id}, SIZE={_mb(snap_blocks)}]")
    if not attrs:
        return ""
    encoded = base64.b64encode((" ".join(attrs) + "\n").encode()).decode()
    return f'VM=[ID={os.path.basename(vm_dir)}, MONITOR="{encoded}"]'


def _raw_snapshots(path: str) -> list[tuple[str, int]]:
    """(id, blocks) of the raw snapshot copies of the disk file at `path`, in id order (qcow2 keeps
    them inside), when its directory's listing showed their folder."""
    try:
        with os.scandir(snapshot_store.folder(path)) as listing:
            snaps = [(e.name, e.stat().st_blocks) for e in listing if e.name.isdigit()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(snaps, key=lambda snap: int(snap[0]))


def monitor(call: TmCall) -> str:
    req = read_ds_request(call.args, call.stdin)
    ds = req.datastore
    base = f"{req.datastore_location.rstrip('/')}/{ds.id}" if req.datastore_location else ds.require_base_path()
    mounted: MountedPath = (require_mount(base, Volume.from_template(ds.template))
                            if ds.template.get("GLUSTER_VOLUME") else require_some_mount(base))
    usage = mounted.usage()
    if req.monitor_vm_disks:
        try:
            monitord.send("MONITOR_VM", True, -1, vm_disks(mounted.path))
        except (DriverError, OSError) as exc:
            log.error(f"VM disk sizes not sent to monitord: {exc}")
    return usage

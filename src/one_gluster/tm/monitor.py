"""TM `monitor` of a gluster system datastore: the volume's capacity on stdout and, when oned asks
(MONITOR_VM_DISKS=1), each VM's disk and snapshot sizes sent to monitord as `MONITOR_VM`."""

from __future__ import annotations

import base64
import os
import re
import threading
from typing import Iterator, Optional

from one_gluster.core import log, monitord, sizes, snapshot_store
from one_gluster.core.ds_request import read_ds_request
from one_gluster.core.errors import DriverError
from one_gluster.core.tm_request import TmCall
from one_gluster.core.volume import MountedPath, Volume, require_mount, require_some_mount
from one_gluster.tm.vm_listings import Key, VmListings, cache_path, key_of

_DISK = re.compile(r"^disk\.(\d+)$")


def _mb(blocks: int) -> int:
    """`du -mL`: blocks in use (of the disk, or of the persistent image it links to), in MB rounded up."""
    return sizes.ceil_mb(blocks * 512)


def vm_disks(base: str, listings: VmListings) -> list[str]:
    """One `VM=[ID=<id>, MONITOR="<base64>"]` per VM directory with disks, as the qcow2 TM reports,
    in VM id order. A VM directory is listed only when it changed since `listings` last saw it (the
    listing carries entry types and, through FUSE's readdirplus, attributes); each disk is asked about
    once; persistent disks' snapshot folders are looked up in one listing of their image datastore;
    and a few threads read the VM directories at once, each a round trip to the bricks or a few. They
    keep pace with the listing of the datastore: a VM directory is read while the kernel still holds
    what that listing said of it (for 1 s), or reaching its disks would cost a lookup of it first."""
    from concurrent.futures import Future, ThreadPoolExecutor

    images = _Listings()
    ahead = threading.BoundedSemaphore(AHEAD)
    reports: list[tuple[int, Future]] = []
    with ThreadPoolExecutor(THREADS) as workers:
        for vm, key in _vm_dirs(base):
            ahead.acquire()
            report = workers.submit(_vm_report, base, vm, key, images, listings)
            report.add_done_callback(lambda _: ahead.release())
            reports.append((int(vm), report))
    return [line for _, report in sorted(reports, key=lambda r: r[0]) if (line := report.result())]


THREADS = 4      # VM directories read at once (more gain nothing on 2 cores: the bricks and client are busy)
AHEAD = 16       # VM directories listed and not yet read, at most


def _vm_dirs(base: str) -> Iterator[tuple[str, Optional[Key]]]:
    """The VM directories of the system datastore `base` as its listing goes, with what tells a changed
    one (None when it cannot be told: the directory is listed)."""
    with os.scandir(base) as entries:
        for entry in entries:
            if entry.name.isdigit() and entry.is_dir(follow_symlinks=False):
                try:
                    yield entry.name, key_of(entry.stat(follow_symlinks=False))
                except OSError:
                    yield entry.name, None


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


def _vm_report(base: str, vm: str, key: Optional[Key], images: _Listings, listings: VmListings) -> str:
    """The VM= line of VM directory `vm` ("" when it holds no disk)."""
    vm_dir = os.path.join(base, vm)
    names = listings.get(vm, key) if key else None
    entries: dict[str, os.DirEntry] = {}
    if names is None:
        try:
            with os.scandir(vm_dir) as listing:
                entries = {e.name: e for e in listing if e.name.startswith("disk.")}
            names = {name: os.readlink(e.path) if e.is_symlink() else None for name, e in entries.items()}
        except (FileNotFoundError, NotADirectoryError):      # removed meanwhile
            return ""
        if key:
            listings.put(vm, key, names)
    attrs = []
    for name in sorted(names):
        match = _DISK.match(name)
        if not match:
            continue
        path, target = os.path.join(vm_dir, name), names[name]
        try:
            if target is not None:             # a persistent disk: its image, listed with its datastore
                target = os.path.normpath(os.path.join(vm_dir, target))
                image = images.entry(target)
                if image is None:              # a dangling link
                    continue
                path, blocks = image.path, image.stat().st_blocks
                snapshots = images.entry(snapshot_store.folder(target)) is not None
            else:
                blocks = (entries[name].stat() if name in entries else os.stat(path)).st_blocks
                snapshots = os.path.basename(snapshot_store.folder(path)) in names
        except FileNotFoundError:              # removed meanwhile
            continue
        disk_id = match.group(1)
        attrs.append(f"DISK_SIZE = [ ID={disk_id}, SIZE={_mb(blocks)}]")
        for snap, snap_blocks in _raw_snapshots(path) if snapshots else ():
            attrs.append(f"SNAPSHOT_SIZE = [ ID={snap}, DISK_ID={disk_id}, SIZE={_mb(snap_blocks)}]")
    if not attrs:
        return ""
    encoded = base64.b64encode((" ".join(attrs) + "\n").encode()).decode()
    return f'VM=[ID={vm}, MONITOR="{encoded}"]'


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
        listings = VmListings(cache_path(ds.id), mounted.path)
        try:
            records = vm_disks(mounted.path, listings)
            listings.save()
            monitord.send("MONITOR_VM", True, -1, records)
        except (DriverError, OSError) as exc:
            log.error(f"VM disk sizes not sent to monitord: {exc}")
    return usage

"""TM `mv`, `mvds`, `delete`: on a shared volume, moving a VM moves no data; deleting stays inside
the VM directory.

These run at every stop, undeploy, migration and terminate, so they import nothing heavy.
"""

from __future__ import annotations

import os

from one_gluster.core import log
from one_gluster.core.errors import DriverError
from one_gluster.core.tm_request import TmCall
from one_gluster.core.volume import require_some_mount


def mv(call: TmCall) -> None:
    """A disk or the VM directory between hosts (same path: nothing to do) or system datastores."""
    call.expect(4, "host:SRC host:DST VMID DSID")
    src, dst = call.path(0), call.path(1)
    if src.path == dst.path or src.disk_id is not None:
        log.info(f"{dst.path} stays where it is on the shared volume")
        return None
    vmid = call.number(2, "VM id")
    src, dst = src.require_vm_dir(vmid), dst.require_vm_dir(vmid)
    source, target = require_some_mount(src.path), require_some_mount(dst.path)
    if source.volume_path == target.volume_path:     # system datastores that are one directory of the volume
        log.info(f"{dst.path} is {src.path} on the shared volume: nothing moves")
        return None
    if source.mount.mount_point != target.mount.mount_point:
        raise DriverError(f"Cannot move {src.path} to {dst.path}: the system datastores are on different gluster "
                          "mounts; move VMs only between system datastores on the same volume")
    if not os.path.lexists(source.path) and os.path.isdir(target.path):
        log.info(f"{dst.path} was already moved")
        return None
    if os.path.lexists(target.path):
        raise DriverError(f"Cannot move {src.path} to {dst.path}: the destination already exists")
    os.makedirs(os.path.dirname(target.path), exist_ok=True)
    os.rename(source.path, target.path)
    log.info(f"Moved {src.path} to {dst.path}")
    return None


def mvds(call: TmCall) -> None:
    """A persistent disk back to its image: the VM wrote the image itself, so nothing moves."""
    call.expect(4, "host:SRC SOURCE VMID DSID")
    log.info(f"{call.args[1]} already holds what the VM wrote")
    return None


def delete(call: TmCall) -> None:
    """Remove a VM disk (with its snapshot copies) or the VM directory; already gone is fine.
    A persistent disk's `disk.<i>` is a link: the link goes, never the image."""
    call.expect(3, "host:PATH VMID DSID")
    vmid = call.number(1, "VM id")
    path = call.path(0).require_vm_path(vmid)
    require_some_mount(os.path.dirname(path.path))   # a dead or missing mount is an error, not "gone"
    from one_gluster.core import snapshot_store, staging

    removed = [p for p in (path.path, snapshot_store.folder(path.path)) if staging.remove_tree(p)]
    log.info(f"Removed {', '.join(removed)}" if removed else f"{path.path} was already gone")
    return None

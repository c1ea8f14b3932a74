"""TM `snap_create`, `snap_create_live`, `snap_delete`, `snap_revert`: disk snapshots kept as the DS
driver keeps image snapshots, so that they survive as image snapshots of persistent disks.

The active layer never moves away from the name core opens: a qcow2 disk (a clone, or the image of
a persistent disk) holds its snapshots inside the file as internal snapshots `one-snap-<id>`; a
raw disk keeps full copies in `<file>.snap/<id>`. A running VM's disks are snapshotted by its own
QEMU through libvirt: a qcow2 one inside the file, a raw one copied by a backup job while the guest runs.
"""

from __future__ import annotations

import os

from .. import files, log, opennebula, qemu
from ..errors import DriverError
from ..opennebula import LCM_DISK_SNAPSHOT_DELETE, Vm
from ..volume import refresh
from . import TmCall, live
from .layout import Disk, guard, load_disk


def require_file(path: str, snap_id: int) -> str:
    found = files.snapshot_copy(path, snap_id)
    if not os.path.isfile(found):
        raise DriverError(f"{path} has no snapshot {snap_id}")
    return found


def _target(call: TmCall) -> tuple[str, int, Vm, Disk, str]:
    """(host, snapshot id, VM, disk, the file that holds the disk's active layer)."""
    call.expect(4, "host:DISK SNAP_ID VMID DSID")
    dst, snap_id, vmid = call.path(0), call.number(1, "snapshot id"), call.number(2, "VM id")
    dst.require_in_vm(vmid)
    opennebula.preload()
    vm, disk = load_disk(vmid, dst.require_disk_id())
    path = guard(dst.path, disk.volume).path      # resolved: a persistent disk's file is the image
    if not os.path.isfile(path):
        raise DriverError(f"The disk {dst.path} does not exist")
    refresh(path)
    return dst.host, snap_id, vm, disk, path


def _tags(path: str, live_host: str | None, vm: Vm, disk: Disk) -> list[str]:
    """The internal snapshots of the qcow2 disk at `path`: as the VM's QEMU sees them when it runs on
    `live_host`, else as the file says."""
    return live.snapshot_names(live_host, vm, disk) if live_host is not None else qemu.snapshot_names(path)


def snap_create(call: TmCall) -> None:
    """Snapshot a disk of a VM that is powered off or suspended."""
    _, snap_id, vm, disk, path = _target(call)
    _create(None, snap_id, vm, disk, path)
    return None


def snap_create_live(call: TmCall) -> None:
    """Snapshot a disk of a running VM, through the hypervisor's libvirt."""
    host, snap_id, vm, disk, path = _target(call)
    _create(host if vm.running else None, snap_id, vm, disk, path)
    return None


def _create(live_host: str | None, snap_id: int, vm: Vm, disk: Disk, path: str) -> None:
    tag = qemu.snapshot_tag(snap_id)
    if disk.format == "qcow2":
        if tag in _tags(path, live_host, vm, disk):
            log.info(f"Snapshot {snap_id} of disk {disk.disk_id} already exists")
        elif live_host is not None:
            live.snapshot_create(live_host, vm, disk, tag)
        else:
            qemu.snapshot(path, "-c", tag)
    else:
        os.makedirs(f"{path}.snap", exist_ok=True)
        final = files.snapshot_copy(path, snap_id)
        if live_host is None:
            files.copy_staged(path, final)
        else:
            with files.Staging(final) as staging:
                staging.commit(live.copy_disk(live_host, vm, disk, staging, "raw"))
    log.info(f"Created snapshot {snap_id} of disk {disk.disk_id} of VM {vm.id}")


def snap_delete(call: TmCall) -> None:
    """Delete a snapshot (also of a running VM); one already gone is fine."""
    host, snap_id, vm, disk, path = _target(call)
    tag = qemu.snapshot_tag(snap_id)
    if disk.format == "qcow2":
        live_host = host if vm.lcm_state == LCM_DISK_SNAPSHOT_DELETE else None
        if tag not in _tags(path, live_host, vm, disk):
            log.info(f"Snapshot {snap_id} of disk {disk.disk_id} was already gone")
        elif live_host is not None:
            live.snapshot_delete(live_host, vm, disk, tag)
        else:
            qemu.snapshot(path, "-d", tag)
    elif not files.remove_tree(files.snapshot_copy(path, snap_id)):
        log.info(f"Snapshot {snap_id} of disk {disk.disk_id} was already gone")
    log.info(f"Deleted snapshot {snap_id} of disk {disk.disk_id} of VM {vm.id}")
    return None


def snap_revert(call: TmCall) -> None:
    """Make the disk's content that of a snapshot (the VM is powered off)."""
    _, snap_id, vm, disk, path = _target(call)
    if disk.format == "qcow2":
        tag = qemu.snapshot_tag(snap_id)
        if tag not in qemu.snapshot_names(path):
            raise DriverError(f"Disk {disk.disk_id} of VM {vm.id} has no snapshot {snap_id}")
        qemu.snapshot(path, "-a", tag)
    else:
        files.copy_staged(require_file(path, snap_id), path)
    log.info(f"Reverted disk {disk.disk_id} of VM {vm.id} to snapshot {snap_id}")
    return None

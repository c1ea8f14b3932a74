"""TM `snap_create`, `snap_create_live`, `snap_delete`, `snap_revert`: disk snapshots in the snapshot
store the DS driver keeps image snapshots in (`core.snapshot_store`), so that they survive as image
snapshots of persistent disks. A running VM's disks are snapshotted by its own QEMU through libvirt:
a qcow2 one inside the file, a raw one copied by a backup job while the guest runs.
"""

from __future__ import annotations

import os

from one_gluster.core import log, qemu
from one_gluster.core.errors import DriverError
from one_gluster.core.snapshot_store import Snapshots, tag
from one_gluster.core.staging import Staging
from one_gluster.core.tm_request import TmCall
from one_gluster.core.vm import LCM_DISK_SNAPSHOT_DELETE, Disk, Vm
from one_gluster.core.volume import refresh
from one_gluster.tm import running_vm
from one_gluster.tm.placement import vm_disk


def _target(call: TmCall) -> tuple[str, int, Vm, Disk, str]:
    """(host, snapshot id, VM, disk, the file that holds the disk's active layer)."""
    call.expect(4, "host:DISK SNAP_ID VMID DSID")
    snap_id = call.number(1, "snapshot id")
    vd = vm_disk(call, 0, 2)
    path = vd.file().path      # resolved: a persistent disk's file is the image
    if not os.path.isfile(path):
        raise DriverError(f"The disk {vd.arg.path} does not exist")
    refresh(path)
    return vd.arg.host, snap_id, vd.vm, vd.disk, path


def _tags(path: str, live_host: str | None, vm: Vm, disk: Disk) -> list[str]:
    """The internal snapshots of the qcow2 disk at `path`: as the VM's QEMU sees them when it runs on
    `live_host`, else as the file says."""
    return running_vm.snapshot_names(live_host, vm, disk) if live_host is not None else qemu.snapshot_names(path)


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
    snapshots = Snapshots(path, disk.format == "qcow2")
    if snapshots.qcow2 and snapshots.find(snap_id, _tags(path, live_host, vm, disk)):
        log.info(f"Snapshot {snap_id} of disk {disk.disk_id} already exists")
    elif live_host is None:
        snapshots.create(snap_id)
    elif snapshots.qcow2:
        running_vm.snapshot_create(live_host, vm, disk, tag(snap_id))
    else:
        with Staging(snapshots.new_copy(snap_id)) as staging:
            staging.commit(running_vm.copy_disk(live_host, vm, disk, staging, "raw"))
    log.info(f"Created snapshot {snap_id} of disk {disk.disk_id} of VM {vm.id}")


def snap_delete(call: TmCall) -> None:
    """Delete a snapshot (also of a running VM); one already gone is fine."""
    host, snap_id, vm, disk, path = _target(call)
    snapshots = Snapshots(path, disk.format == "qcow2")
    live_host = host if snapshots.qcow2 and vm.lcm_state == LCM_DISK_SNAPSHOT_DELETE else None
    if live_host is None:
        gone = not snapshots.delete(snap_id)
    else:
        gone = not snapshots.find(snap_id, _tags(path, live_host, vm, disk))
        if not gone:
            running_vm.snapshot_delete(live_host, vm, disk, tag(snap_id))
    if gone:
        log.info(f"Snapshot {snap_id} of disk {disk.disk_id} was already gone")
    log.info(f"Deleted snapshot {snap_id} of disk {disk.disk_id} of VM {vm.id}")
    return None


def snap_revert(call: TmCall) -> None:
    """Make the disk's content that of a snapshot (the VM is powered off)."""
    _, snap_id, vm, disk, path = _target(call)
    Snapshots(path, disk.format == "qcow2").revert(snap_id, f"Disk {disk.disk_id} of VM {vm.id}")
    log.info(f"Reverted disk {disk.disk_id} of VM {vm.id} to snapshot {snap_id}")
    return None

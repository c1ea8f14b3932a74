"""The `.ssh` mixed mode: images of a gluster datastore used by VMs on an ssh system datastore, whose
disks live on each host's local disk. oned then runs `<action>.ssh`; the disk is a standalone copy
of the image on the host (DISK_TYPE_SSH=FILE), copied there at deploy and back at undeploy/terminate
for persistent disks. Commands run on the host through ssh (here, when the host is this machine).
"""

from __future__ import annotations

import os

from one_gluster.core import log, snapshot_store
from one_gluster.core.errors import DriverError
from one_gluster.core.ssh import fetch_file, run_on, send_file
from one_gluster.core.staging import Staging
from one_gluster.core.tm_request import TmCall
from one_gluster.core.vm import LCM_DISK_RESIZE
from one_gluster.core.volume import refresh
from one_gluster.tm.placement import guard, vm_disk


def _to_host(call: TmCall) -> None:
    call.expect(4, "fe:SOURCE host:DST VMID DSID")
    src, (dst, _, disk) = call.path(0), vm_disk(call, 1, 2)
    image = guard(src.path, disk.volume)
    log.info(f"Copying {src.path} to {dst.host}:{dst.path}")
    refresh(image.path)
    send_file(image.path, dst.host, dst.path)
    if disk.grow_to_mb:
        _resize_on(dst.host, dst.path, disk.format, disk.grow_to_mb)


def _resize_on(host: str, path: str, fmt: str, size_mb: int) -> None:
    run_on(host, "qemu-img", "resize", "-q", "-f", fmt, path, f"{size_mb}M", what=f"Resizing {path}")


def clone_ssh(call: TmCall) -> None:
    """A non-persistent disk: a copy of the image on the host."""
    _to_host(call)
    return None


def ln_ssh(call: TmCall) -> None:
    """A persistent disk: a copy on the host, written back to the image by mvds.ssh."""
    _to_host(call)
    return None


def _from_host(host: str, path: str, final: str) -> None:
    with Staging(final) as staging:
        temp = staging.temp()
        fetch_file(host, path, temp)
        staging.commit(temp)


def mvds_ssh(call: TmCall) -> None:
    """The persistent disk back into its image SOURCE, replacing it only once fully copied."""
    call.expect(4, "host:SRC SOURCE VMID DSID")
    call.path(0).require_in_vm(call.number(2, "VM id"))       # the disk is checked first, as everywhere
    source = call.path(1).require_in_datastore(call.number(3, "datastore id"))
    src, _, disk = vm_disk(call, 0, 2)
    image = guard(source.path, disk.volume)
    log.info(f"Copying {src.host}:{src.path} back to {image.path}")
    _from_host(src.host, src.path, image.path)
    return None


def cpds_ssh(call: TmCall) -> None:
    """Save the current disk (snap_id -1) as the new image NEW_SOURCE."""
    call.expect(5, "host:SRC NEW_SOURCE SNAP_ID VMID DSID")
    src, snap_id = call.path(0).require_in_vm(call.number(3, "VM id")), call.number(2, "snapshot id")
    new_source = call.path(1).require_in_datastore(call.number(4, "datastore id")).path
    if snap_id != -1:
        raise DriverError("Saving a snapshot of a disk on an ssh system datastore is not supported: save the disk")
    target_dir = guard(os.path.dirname(new_source), None)
    _from_host(src.host, src.path, os.path.join(target_dir.path, os.path.basename(new_source)))
    return None


def delete_ssh(call: TmCall) -> None:
    """Remove the host's copy of the disk."""
    call.expect(3, "host:PATH VMID DSID")
    dst = call.path(0).require_in_vm(call.number(1, "VM id"))
    dst.require_disk_id()
    run_on(dst.host, "rm", "-rf", dst.path, snapshot_store.folder(dst.path), what=f"Removing {dst.path}")
    return None


def resize_ssh(call: TmCall) -> None:
    """Grow the host's copy of the disk."""
    call.expect(4, "host:DST SIZE VMID DSID")
    size, (dst, vm, disk) = call.size_mb(1), vm_disk(call, 0, 2)
    if vm.lcm_state == LCM_DISK_RESIZE:
        return None
    _resize_on(dst.host, dst.path, disk.format, size)
    return None

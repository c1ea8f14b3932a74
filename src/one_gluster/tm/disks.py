"""TM `clone`, `ln`, `mkimage`, `mkswap`, `resize`, `cpds`: VM disks made, grown and saved on the volume.

A clone is a qcow2 overlay on the image, with the image as a relative backing file, so it costs the
same for any image size and libgfapi finds the backing file inside the volume; a full sparse copy
when the disk is raw or the datastore asks for standalone disks (QCOW2_STANDALONE). A persistent
disk is the image itself: `disk.<i>` is only a relative symlink to it.
"""

from __future__ import annotations

import os

from one_gluster.core import guest_fs, log, qemu, sparse_copy
from one_gluster.core.errors import DriverError
from one_gluster.core.staging import Staging
from one_gluster.core.tm_request import TmCall
from one_gluster.core.vm import LCM_DISK_RESIZE, Disk
from one_gluster.core.volume import refresh
from one_gluster.tm.placement import guard, place, system_volume, vm_dir, vm_disk

MiB = 1 << 20


def _existing_clone(path: str, disk: Disk, backing: str, size_bytes: int) -> None:
    """An earlier run of this clone already finished (oned may retry): accept it only if it is one."""
    data = qemu.info(path, disk.format)
    if data.get("backing-filename", backing) == backing and data.get("virtual-size", 0) >= size_bytes:
        log.info(f"{path} is already a clone of {backing}")
        return
    raise DriverError(f"{path} already exists and is not a clone of {backing}: delete it first")


def clone(call: TmCall) -> None:
    """Make `disk.<i>` of the VM from image SOURCE: overlay, or full copy; grown to the disk SIZE."""
    call.expect(4, "fe:SOURCE host:DST VMID DSID")
    src, dst = call.path(0), call.path(1).require_in_vm(call.number(2, "VM id"))
    if dst.disk_id is None:
        _copy_plain(src.path, dst.path)              # a kernel or initrd from a file datastore
        return None
    vd = vm_disk(call, 1, 2)
    disk = vd.disk
    target, image, backing = place(vd, src, persistent=False)
    grow = disk.grow_to_mb
    overlay = disk.format == "qcow2" and not disk.template.flag("QCOW2_STANDALONE")
    if os.path.lexists(target.path):
        _existing_clone(target.path, disk, backing if overlay else "", (grow or 0) * MiB)
        return None
    with Staging(target.path) as staging:
        temp = staging.temp()
        if overlay:
            log.info(f"Creating {dst.path} as a qcow2 overlay on {backing}")
            qemu.overlay(temp, backing, disk.image_format, grow * MiB if grow else None)
        else:
            log.info(f"Copying {image.path} into {dst.path} as a standalone {disk.format} disk")
            refresh(image.path)
            qemu.standalone_copy(image.path, temp, disk.format, disk.image_format)
            if grow:
                qemu.resize(temp, disk.format, grow * MiB)
            if disk.format == "raw" and not disk.template.flag("SPARSE", default=True):
                sparse_copy.allocate(temp)
        staging.commit(temp)
    return None


def _copy_plain(src: str, dst: str) -> None:
    source = guard(src, None)
    target = guard(os.path.dirname(dst), None)
    os.makedirs(target.path, exist_ok=True)
    sparse_copy.copy_staged(source.path, os.path.join(target.path, os.path.basename(dst)))


def ln(call: TmCall) -> None:
    """A persistent disk: the VM uses the image in place; `disk.<i>` links to it for the VM directory."""
    call.expect(4, "fe:SOURCE host:DST VMID DSID")
    src, vd = call.path(0), vm_disk(call, 1, 2)
    dst = vd.arg
    target, _, link = place(vd, src, persistent=True)
    final = target.path
    if os.path.islink(final) and os.readlink(final) == link:
        log.info(f"{dst.path} already links to {link}")
        return None
    if os.path.lexists(final) and not os.path.islink(final):
        raise DriverError(f"{dst.path} already exists and is not a link to the image: delete it first")
    with Staging(final) as staging:
        temp = staging.temp("link")
        os.symlink(link, temp)
        os.replace(temp, final)
    log.info(f"Linked {dst.path} to the image {src.path}")
    return None


def mkimage(call: TmCall) -> None:
    """A volatile disk of SIZE MB: raw or qcow2, with the FS of the VM disk made inside, or swap."""
    call.expect(5, "SIZE FORMAT host:DST VMID DSID")
    size, fmt, dst = call.size_mb(0), call.args[1].lower(), call.path(2).require_in_vm(call.number(3, "VM id"))
    dsid = call.number(4, "datastore id")
    if fmt == "swap":
        _make_volatile(size, "raw", "swap", dst.path, dsid)
        return None
    if fmt not in qemu.TARGET_FORMATS:
        raise DriverError(f"Unknown volatile disk format {fmt!r}: use raw or qcow2")
    disk = vm_disk(call, 2, 3).disk
    fs = guest_fs.check(disk.template.get("FS")) if disk.template.get("FS") else ""
    _make_volatile(size, fmt, fs, dst.path, dsid)
    return None


def mkswap(call: TmCall) -> None:
    """A swap disk of SIZE MB."""
    call.expect(4, "SIZE host:DST VMID DSID")
    dst = call.path(1).require_in_vm(call.number(2, "VM id"))
    _make_volatile(call.size_mb(0), "raw", "swap", dst.path, call.number(3, "datastore id"))
    return None


def _make_volatile(size_mb: int, fmt: str, fs: str, dst: str, dsid: int) -> None:
    if size_mb <= 0:
        raise DriverError(f"A volatile disk needs a size in MB, got {size_mb}")
    vm = vm_dir(dst, system_volume(dsid))
    final = os.path.join(vm.path, os.path.basename(dst))
    if os.path.lexists(final):
        data = qemu.info(final, fmt)
        if data.get("virtual-size") == size_mb * MiB:
            log.info(f"{dst} already exists with {size_mb} MB")
            return
        raise DriverError(f"{dst} already exists with another size: delete it first")
    log.info(f"Creating a {size_mb} MB {fmt} disk {dst}" + (f" with {fs}" if fs else ""))
    with Staging(final) as staging:
        staging.commit(guest_fs.make_image(staging, fmt, size_mb * MiB, fs))


def resize(call: TmCall) -> None:
    """Grow the disk to SIZE MB: the clone itself, or the image of a persistent disk."""
    call.expect(4, "host:DST SIZE VMID DSID")
    size, vd = call.size_mb(1), vm_disk(call, 0, 2)
    if vd.vm.lcm_state == LCM_DISK_RESIZE:
        log.info("The VM is running: the hypervisor grows the disk (virsh blockresize)")
        return None
    path = vd.file().path
    refresh(path)
    log.info(f"Resizing {vd.arg.path} to {size} MB")
    qemu.resize(path, vd.disk.format, size * MiB)
    return None


def cpds(call: TmCall) -> None:
    """Save the disk (snap_id -1) or one of its snapshots as the new image NEW_SOURCE (disk-saveas)."""
    call.expect(5, "host:SRC NEW_SOURCE SNAP_ID VMID DSID")
    snap_id = call.number(2, "snapshot id")
    call.path(0).require_in_vm(call.number(3, "VM id"))       # the disk is checked first, as everywhere
    new_source = call.path(1).require_in_datastore(call.number(4, "datastore id")).path
    src, vm, disk = vd = vm_disk(call, 0, 3)
    mounted = vd.file()
    path = mounted.path
    target_dir = guard(os.path.dirname(new_source), None)
    final = os.path.join(target_dir.path, os.path.basename(new_source))
    if final == path:
        log.info(f"{new_source} is the disk itself: nothing to copy")
        return None
    from one_gluster.core.snapshot_store import Snapshots, tag
    from one_gluster.tm import running_vm

    with Staging(final) as staging:
        if snap_id < 0 and vm.running:
            temp = running_vm.copy_disk(src.host, vm, disk, staging, disk.image_format)
        else:
            temp = staging.temp()
            refresh(path)
            if snap_id >= 0 and disk.format != "qcow2":
                snapshot = Snapshots(path, qcow2=False).require(snap_id, f"Disk {disk.disk_id} of VM {disk.vmid}")
                sparse_copy.copy_to_new(snapshot, temp)
            elif snap_id >= 0:       # a running QEMU may just have written it, and the mount's view lags behind:
                # read what it wrote through libgfapi, as QEMU opens the disk, or, for a file disk (whose
                # QEMU need not have the gluster driver), through the mount refreshed above
                source = running_vm.gfapi_uri(mounted, disk) if vm.running and disk.network else path
                qemu.convert(source, temp, disk.image_format, src_fmt="qcow2", snapshot=tag(snap_id),
                             in_use=vm.running)
            else:
                qemu.standalone_copy(path, temp, disk.image_format, disk.format)
        staging.commit(temp)
    log.info(f"Saved disk {disk.disk_id} of VM {disk.vmid}" + (f" snapshot {snap_id}" if snap_id >= 0 else "")
             + f" as {new_source}")
    return None

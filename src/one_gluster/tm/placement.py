"""The disk a TM action works on, and where a new one goes, proven before anything is written.

Every action that acts on a VM disk starts the same way (`vm_disk`): the path oned gives must be a
disk of the VM it names, and the VM and the disk come from oned. Core names a gluster disk
`GLUSTER_VOLUME/<vmid>/disk.<i>` (a clone) or `GLUSTER_VOLUME/<basename of SOURCE>` (a persistent
image), relative to the volume root, so every disk the TM makes or links is checked against that
name (`place`): a datastore layout that cannot satisfy it fails the action with what to change,
instead of a VM that fails at boot.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Optional

from one_gluster.core import kvm_disk, opennebula
from one_gluster.core.errors import DriverError
from one_gluster.core.tm_request import HostPath, TmCall
from one_gluster.core.vm import Disk, Vm
from one_gluster.core.volume import MountedPath, Volume, require_mount, require_some_mount


class VmDisk(NamedTuple):
    """The argument that names a VM disk, the VM and the disk, as oned knows them."""

    arg: HostPath
    vm: Vm
    disk: Disk

    def file(self) -> MountedPath:
        """The disk's file, proven on a live mount of its volume (a persistent disk's resolves to the image)."""
        return guard(self.arg.path, self.disk.volume)


def vm_disk(call: TmCall, path_index: int, vmid_index: int) -> VmDisk:
    """The disk that argument `path_index` names, refused unless it is `disk.<i>` of the VM whose id is
    argument `vmid_index`; the VM and its disk from oned, pyone imported in the background meanwhile
    (not sh too: it would slow the copies, and the cheap actions would not gain)."""
    vmid = call.number(vmid_index, "VM id")
    arg = call.path(path_index).require_in_vm(vmid)
    opennebula.preload()
    disk_id = arg.require_disk_id()
    vm = opennebula.client().vm(vmid)
    return VmDisk(arg, vm, Disk(vmid, disk_id, vm.disk(disk_id)))


class Placement(NamedTuple):
    """A disk's place in its VM directory, and the image it points to, on one proven mount."""

    target: MountedPath       # the disk's file, `<vmid>/disk.<i>`
    image: MountedPath
    relative: str             # the image from the VM directory (a backing file or a link): FUSE and
    #                           libgfapi resolve it alike


def place(vd: VmDisk, image: HostPath, *, persistent: bool) -> Placement:
    """Where disk `vd` goes, made from or linked to `image`: both on a live mount of the disk's volume,
    the VM directory made if needed, the file core will open (the image of a persistent disk, else the
    disk) at core's name, and image and disk on the same mount."""
    volume = vd.disk.volume
    found = guard(image.path, volume)
    if persistent and not os.path.isfile(found.path):
        raise DriverError(f"The image {image.path} does not exist")
    source = vd.disk.template.get("SOURCE") or image.path
    if persistent:
        check_name(vd.disk, found, source)
    directory = vm_dir(vd.arg.path, volume)
    target = directory._replace(path=os.path.join(directory.path, os.path.basename(vd.arg.path)))
    if not persistent:
        check_name(vd.disk, target, source)
    same_mount(found, directory)
    return Placement(target, found, os.path.relpath(found.path, directory.path))


def system_volume(dsid: int) -> Optional[Volume]:
    """GLUSTER_VOLUME of the system datastore (`onedatastore show`), where its template names one."""
    template = opennebula.client().datastore_template(dsid)
    return Volume.from_template(template) if template.get("GLUSTER_VOLUME") else None


def guard(path: str, volume: Optional[Volume]) -> MountedPath:
    """`path` proven on a live gluster mount (of `volume` when the disk names one)."""
    return require_mount(path, volume) if volume is not None else require_some_mount(path)


def vm_dir(path: str, volume: Optional[Volume]) -> MountedPath:
    """The VM directory that holds disk `path`, created if needed, on a proven gluster mount."""
    mounted = guard(os.path.dirname(path), volume)
    os.makedirs(mounted.path, exist_ok=True)
    return mounted


def check_name(disk: Disk, actual: MountedPath, source: str) -> None:
    """Refuse unless `actual` is the volume path core will open for this disk."""
    volume = disk.volume
    if volume is None:
        return
    expected = kvm_disk.disk_name(disk.template.get("GLUSTER_VOLUME"), disk.vmid, disk.disk_id, source,
                                  disk.clone)
    if actual.volume_path != expected:
        raise DriverError(
            f"Disk {disk.disk_id} of VM {disk.vmid}: KVM will open gluster volume path {expected}, but the "
            f"driver would use {actual.volume_path} ({actual.path} on {actual.mount.source}). Mount "
            f"GLUSTER_VOLUME ({volume.name}{'/' + volume.subdir if volume.subdir else ''}) at the system "
            "datastore directory and make the image datastore directory the same directory of the volume "
            "(a symlink to it), as `one-gluster mount` sets up"
        )


def same_mount(image: MountedPath, disk_dir: MountedPath) -> None:
    """A backing file or symlink between image and VM directory must stay inside one mount."""
    if image.mount.mount_point != disk_dir.mount.mount_point:
        raise DriverError(
            f"The image {image.path} and the VM directory {disk_dir.path} are on different gluster mounts "
            f"({image.mount.mount_point}, {disk_dir.mount.mount_point}): the image and system datastore "
            "directories must be the same directory of the volume"
        )

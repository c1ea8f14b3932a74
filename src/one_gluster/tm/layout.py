"""Where VM disks live on the volume, and the proof that they are where OpenNebula core will look.

Core names a gluster disk `GLUSTER_VOLUME/<vmid>/disk.<i>` (a clone) or `GLUSTER_VOLUME/<basename
of SOURCE>` (a persistent image), relative to the volume root. So every disk the TM makes is
checked against that name before anything is written: a datastore layout that cannot satisfy it
fails the action with what to change, instead of a VM that fails at boot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from .. import libvirt, opennebula
from ..errors import DriverError
from ..opennebula import Vm
from ..template import Template
from ..volume import MountedPath, Volume, require_mount, require_some_mount


@dataclass(frozen=True)
class Disk:
    """A VM DISK as `onevm show` gives it, with the attributes the TM acts on."""

    vmid: int
    disk_id: int
    template: Template

    @property
    def format(self) -> str:
        """The format libvirt will be told (DRIVER, else the image FORMAT), which the file must have."""
        return (self.template.get("DRIVER") or self.template.get("FORMAT") or "raw").lower()

    @property
    def image_format(self) -> str:
        return (self.template.get("FORMAT") or self.format).lower()

    @property
    def clone(self) -> bool:
        return self.template.flag("CLONE")

    @property
    def volume(self) -> Optional[Volume]:
        """GLUSTER_VOLUME/GLUSTER_HOST inherited from the image datastore; None for other disks."""
        if not self.template.get("GLUSTER_VOLUME"):
            return None
        return Volume.from_template(self.template)

    def size_mb(self, name: str) -> int:
        value = self.template.get(name)
        return int(value) if value.isdigit() else 0

    @property
    def grow_to_mb(self) -> Optional[int]:
        """SIZE when it is larger than ORIGINAL_SIZE: the disk must be grown to it."""
        size, original = self.size_mb("SIZE"), self.size_mb("ORIGINAL_SIZE")
        return size if original and size > original else None


def load_disk(vmid: int, disk_id: int) -> tuple[Vm, Disk]:
    """The VM and its DISK `disk_id` from oned (`onevm show -x`)."""
    vm = opennebula.client().vm(vmid)
    return vm, Disk(vmid, disk_id, vm.disk(disk_id))


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
    expected = libvirt.disk_name(disk.template.get("GLUSTER_VOLUME"), disk.vmid, disk.disk_id, source,
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

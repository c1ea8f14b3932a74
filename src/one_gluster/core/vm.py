"""The VM model of the TM actions: a VM with its disks and their attributes, whether it comes from
oned's API (`core.opennebula`) or from the VM document on an action's stdin (`core.tm_request`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional

from one_gluster.core.errors import DriverError
from one_gluster.core.template import Template

if TYPE_CHECKING:
    from lxml import etree

    from one_gluster.core.volume import Volume

# LCM states (VirtualMachine.h) that change what an action does
LCM_RUNNING = 3
LCM_HOTPLUG_SAVEAS = 26
LCM_DISK_SNAPSHOT = 57
LCM_DISK_SNAPSHOT_DELETE = 59
LCM_DISK_RESIZE = 62
LIVE_STATES = frozenset({LCM_RUNNING, LCM_HOTPLUG_SAVEAS, LCM_DISK_SNAPSHOT, LCM_DISK_SNAPSHOT_DELETE,
                         LCM_DISK_RESIZE})


class Vm:
    """A VM as TM actions read it, from oned's API (`onevm show -x`) or from the VM document oned
    writes on an action's stdin. (Plain classes, this and Disk: made at the start of TM actions,
    where NamedTuples would cost their creation.)"""

    __slots__ = ("id", "lcm_state", "deploy_id", "disks", "backup_config")

    def __init__(self, id: int, lcm_state: int, deploy_id: str, disks: dict[int, Template],
                 backup_config: Optional[Template] = None) -> None:
        self.id, self.lcm_state, self.deploy_id, self.disks = id, lcm_state, deploy_id, disks
        self.backup_config = backup_config or Template({})    # BACKUPS/BACKUP_CONFIG, in the stdin document

    @classmethod
    def from_element(cls, vm: etree._Element) -> "Vm":
        """From the VM document (`<VM>`) oned writes on stdin; absent numbers read as -1."""
        number = (lambda name: int(text) if (text := vm.findtext(name, "").strip()).isdigit() else -1)
        disks = disks_by_id(Template.from_element(node) for node in vm.iterfind("TEMPLATE/DISK"))
        return cls(id=number("ID"), lcm_state=number("LCM_STATE"), deploy_id=vm.findtext("DEPLOY_ID", "").strip(),
                   disks=disks, backup_config=Template.from_element(vm.find("BACKUPS/BACKUP_CONFIG")))

    def disk(self, disk_id: int) -> Template:
        try:
            return self.disks[disk_id]
        except KeyError:
            raise DriverError(f"VM {self.id} has no disk {disk_id}") from None

    @property
    def running(self) -> bool:
        return self.lcm_state in LIVE_STATES


def disks_by_id(disks: Iterable[Template]) -> dict[int, Template]:
    """A VM's DISK templates by DISK_ID; one without a numeric DISK_ID is left out."""
    return {int(disk.get("DISK_ID")): disk for disk in disks if disk.get("DISK_ID").isdigit()}


class Disk:
    """A VM DISK as `onevm show` gives it, with the attributes the TM acts on."""

    __slots__ = ("vmid", "disk_id", "template")

    def __init__(self, vmid: int, disk_id: int, template: Template) -> None:
        self.vmid, self.disk_id, self.template = vmid, disk_id, template

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
    def network(self) -> bool:
        """Whether KVM opens the disk through libgfapi (DISK_TYPE=GLUSTER), not as a file through the
        host's FUSE mount of the volume (DISK_TYPE=FILE)."""
        return (self.template.get("DISK_TYPE") or self.template.get("TYPE")).upper() == "GLUSTER"

    @property
    def volume(self) -> Optional[Volume]:
        """GLUSTER_VOLUME/GLUSTER_HOST inherited from the image datastore; None for other disks."""
        if not self.template.get("GLUSTER_VOLUME"):
            return None
        from one_gluster.core.volume import Volume     # not for the actions that only read the document

        return Volume.from_template(self.template)

    def size_mb(self, name: str) -> int:
        value = self.template.get(name)
        return int(value) if value.isdigit() else 0

    @property
    def grow_to_mb(self) -> Optional[int]:
        """SIZE when it is larger than ORIGINAL_SIZE: the disk must be grown to it."""
        size, original = self.size_mb("SIZE"), self.size_mb("ORIGINAL_SIZE")
        return size if original and size > original else None

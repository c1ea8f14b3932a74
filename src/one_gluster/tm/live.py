"""Disk operations on a running VM, through the host's libvirt: internal qcow2 snapshots taken, listed
and removed by QEMU itself (QMP `blockdev-snapshot-internal-sync`), QEMU's dirty bitmaps, and pausing
or freezing a guest around a copy or a backup's start."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from typing import Any, Iterator

from .. import libvirt
from ..errors import DriverError
from ..hosts import run_on
from ..opennebula import Vm
from ..xmldoc import parse_xml
from ..volume import MountedPath
from .layout import Disk

LIBVIRT_URI = "qemu:///system"


def virsh(host: str, *args: str, what: str = "") -> str:
    return run_on(host, "virsh", "-c", LIBVIRT_URI, *args, what=what)


@contextlib.contextmanager
def xml_file(folder: str, name: str, xml: bytes) -> Iterator[str]:
    """`xml` in the file `name` of `folder`, on the volume where the host's virsh reads it too, for as
    long as the block runs."""
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(xml)
    try:
        yield path
    finally:
        os.unlink(path)


def _qmp(host: str, domain: str, command: str, **arguments: Any) -> Any:
    message = json.dumps({"execute": command, "arguments": arguments})
    reply = json.loads(virsh(host, "qemu-monitor-command", domain, message, what=f"QEMU {command} on {domain}"))
    if "error" in reply:
        raise DriverError(f"QEMU {command} on {domain} failed: {reply['error'].get('desc', reply['error'])}")
    return reply.get("return")


def _domain(vm: Vm) -> str:
    if not vm.deploy_id:
        raise DriverError(f"VM {vm.id} is running but has no DEPLOY_ID")
    return vm.deploy_id


def _inserted(host: str, domain: str, disk: Disk) -> dict[str, Any]:
    """What QEMU says of the disk's image (QMP query-block): libvirt's alias for its target, then
    QEMU's block device of that alias."""
    target = disk.template.get("TARGET")
    root = parse_xml(virsh(host, "dumpxml", domain, what=f"Reading domain {domain}").encode(), "domain XML")
    alias = root.xpath("string(devices/disk[target/@dev=$t]/alias/@name)", t=target)
    if not alias:
        raise DriverError(f"Domain {domain} has no disk with target {target!r}")
    for device in _qmp(host, domain, "query-block"):
        if alias in device.get("qdev", "").split("/") and device.get("inserted"):
            return device["inserted"]
    raise DriverError(f"QEMU of {domain} has no block device for disk {target} ({alias})")


def _node(host: str, domain: str, disk: Disk) -> str:
    """The QEMU block node of the disk."""
    return _inserted(host, domain, disk)["node-name"]


def snapshot_names(host: str, vm: Vm, disk: Disk) -> list[str]:
    """The internal snapshots of a running VM's qcow2 disk, as its QEMU sees them: the mount's view of
    a file that QEMU writes through libgfapi lags behind by up to ~2 s (gluster's md-cache and the
    kernel's attribute and page caches)."""
    image = _inserted(host, _domain(vm), disk).get("image", {})
    return [snapshot.get("name", "") for snapshot in image.get("snapshots", [])]


def bitmaps(host: str, domain: str, disk: Disk) -> list[str]:
    """Names of the dirty bitmaps QEMU keeps for the disk (those loaded from the image, and those made since)."""
    node = _node(host, domain, disk)
    for found in _qmp(host, domain, "query-named-block-nodes", flat=True):
        if found.get("node-name") == node:
            return [bitmap.get("name", "") for bitmap in found.get("dirty-bitmaps", [])]
    raise DriverError(f"QEMU of {domain} has no block node {node}")


def remove_bitmap(host: str, domain: str, disk: Disk, name: str) -> None:
    _qmp(host, domain, "block-dirty-bitmap-remove", node=_node(host, domain, disk), name=name)


def gfapi_uri(mounted: MountedPath, disk: Disk) -> str:
    """The disk as its VM's QEMU opens it: through libgfapi, from the first GLUSTER_HOST."""
    volume = disk.volume
    if volume is None or not volume.servers:
        raise DriverError(f"Disk {disk.disk_id} of VM {disk.vmid} has no GLUSTER_HOST to read it from")
    return libvirt.uri(mounted.volume_path, volume.servers[0])


def snapshot_create(host: str, vm: Vm, disk: Disk, tag: str) -> None:
    domain = _domain(vm)
    _qmp(host, domain, "blockdev-snapshot-internal-sync", device=_node(host, domain, disk), name=tag)


def snapshot_delete(host: str, vm: Vm, disk: Disk, tag: str) -> None:
    domain = _domain(vm)
    _qmp(host, domain, "blockdev-snapshot-delete-internal-sync", device=_node(host, domain, disk), name=tag)


@contextlib.contextmanager
def live_snapshot(host: str, vm: Vm, disk: Disk) -> Iterator[str]:
    """A temporary internal snapshot of a running qcow2 disk: a consistent point to copy from."""
    tag = f"one-gluster-copy-{secrets.token_hex(4)}"
    snapshot_create(host, vm, disk, tag)
    try:
        yield tag
    finally:
        snapshot_delete(host, vm, disk, tag)


@contextlib.contextmanager
def _suspended(host: str, domain: str) -> Iterator[None]:
    virsh(host, "suspend", domain, what=f"Suspending {domain}")
    try:
        yield
    finally:
        virsh(host, "resume", domain, what=f"Resuming {domain}")


def paused(host: str, vm: Vm) -> contextlib.AbstractContextManager[None]:
    """The guest suspended (no writes) for a copy of a raw disk, resumed whatever happens."""
    return _suspended(host, _domain(vm))


@contextlib.contextmanager
def quiesced(host: str, domain: str, fs_freeze: str) -> Iterator[None]:
    """The guest held as BACKUP_CONFIG/FS_FREEZE asks, released whatever happens: AGENT freezes its
    filesystems through the guest agent, SUSPEND pauses it, anything else holds nothing."""
    if fs_freeze == "SUSPEND":
        with _suspended(host, domain):
            yield
    elif fs_freeze == "AGENT":
        virsh(host, "domfsfreeze", domain, what=f"Freezing the filesystems of {domain}")
        try:
            yield
        finally:
            virsh(host, "domfsthaw", domain, what=f"Thawing the filesystems of {domain}")
    else:
        yield

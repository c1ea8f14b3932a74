"""Disk operations on a running VM, through the host's libvirt: internal qcow2 snapshots taken, listed
and removed by QEMU itself (QMP `blockdev-snapshot-internal-sync`), QEMU's dirty bitmaps, push-mode
backup jobs (`virsh backup-begin`) and the copies of a disk they make, and pausing or freezing a guest
around a backup's start."""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any, Iterator, Optional

from lxml import etree

from one_gluster.core import kvm_disk, log, qemu, virsh_output
from one_gluster.core.errors import CommandError, DriverError
from one_gluster.core.ssh import run_on
from one_gluster.core.staging import Staging
from one_gluster.core.vm import Disk, Vm
from one_gluster.core.volume import MountedPath

LIBVIRT_URI = "qemu:///system"
POLL_SECONDS = 0.5
BEGIN_TRIES, BEGIN_WAIT = 3, 2          # the mount's caches of a file's attributes last up to ~2 s
BEGIN_REFUSALS = ("Permission denied", 'Failed to get shared "write" lock')   # of a just-made backup file
RECORD_WAIT = 5                         # seconds an ended job may take to be recorded


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
    out = virsh(host, "qemu-monitor-command", domain, message, what=f"QEMU {command} on {domain}")
    return virsh_output.qmp_return(out, command, domain)


def _domain(vm: Vm) -> str:
    if not vm.deploy_id:
        raise DriverError(f"VM {vm.id} is running but has no DEPLOY_ID")
    return vm.deploy_id


def target_dev(disk: Disk) -> str:
    """The disk's target device in the domain (TARGET: vda, sdb...)."""
    target = disk.template.get("TARGET")
    if not target:
        raise DriverError(f"Disk {disk.disk_id} of VM {disk.vmid} has no TARGET")
    return target


def _inserted(host: str, domain: str, disk: Disk) -> dict[str, Any]:
    """What QEMU says of the disk's image (QMP query-block): libvirt's alias for its target, then
    QEMU's block device of that alias."""
    target = target_dev(disk)
    alias = virsh_output.disk_alias(virsh(host, "dumpxml", domain, what=f"Reading domain {domain}"), target)
    if not alias:
        raise DriverError(f"Domain {domain} has no disk with target {target!r}")
    found = virsh_output.inserted(_qmp(host, domain, "query-block"), alias)
    if found is None:
        raise DriverError(f"QEMU of {domain} has no block device for disk {target} ({alias})")
    return found


def node(host: str, domain: str, disk: Disk) -> str:
    """The QEMU block node of the disk."""
    return _inserted(host, domain, disk)["node-name"]


def snapshot_names(host: str, vm: Vm, disk: Disk) -> list[str]:
    """The internal snapshots of a running VM's qcow2 disk, as its QEMU sees them: the mount's view of
    a file that QEMU writes through libgfapi lags behind by up to ~2 s (gluster's md-cache and the
    kernel's attribute and page caches)."""
    return virsh_output.snapshot_names(_inserted(host, _domain(vm), disk))


def bitmaps(host: str, domain: str, node: str) -> list[str]:
    """Names of the dirty bitmaps QEMU keeps for block `node` (those loaded from the image, and those made
    since)."""
    found = virsh_output.bitmaps(_qmp(host, domain, "query-named-block-nodes", flat=True), node)
    if found is None:
        raise DriverError(f"QEMU of {domain} has no block node {node}")
    return found


def remove_bitmaps(host: str, domain: str, node: str, names: list[str]) -> None:
    """Remove dirty bitmaps `names` of block `node` from QEMU (and from the image, where they are persistent)."""
    for name in names:
        _qmp(host, domain, "block-dirty-bitmap-remove", node=node, name=name)


def gfapi_uri(mounted: MountedPath, disk: Disk) -> str:
    """The disk as its VM's QEMU opens it: through libgfapi, from the first GLUSTER_HOST. A new
    libgfapi client has nothing cached, so it reads what QEMU has written."""
    volume = disk.volume
    if volume is None or not volume.servers:
        raise DriverError(f"Disk {disk.disk_id} of VM {disk.vmid} has no GLUSTER_HOST to read it from")
    return kvm_disk.uri(mounted.volume_path, volume.servers[0])


def snapshot_create(host: str, vm: Vm, disk: Disk, tag: str) -> None:
    domain = _domain(vm)
    _qmp(host, domain, "blockdev-snapshot-internal-sync", device=node(host, domain, disk), name=tag)


def snapshot_delete(host: str, vm: Vm, disk: Disk, tag: str) -> None:
    domain = _domain(vm)
    _qmp(host, domain, "blockdev-snapshot-delete-internal-sync", device=node(host, domain, disk), name=tag)


# BACKUP_CONFIG/FS_FREEZE: the virsh commands that hold the guest and release it, as logs name them
_HOLDS = {
    "SUSPEND": (("suspend", "Suspending"), ("resume", "Resuming")),
    "AGENT": (("domfsfreeze", "Freezing the filesystems of"), ("domfsthaw", "Thawing the filesystems of")),
}


@contextlib.contextmanager
def quiesced(host: str, domain: str, fs_freeze: str) -> Iterator[None]:
    """The guest held as BACKUP_CONFIG/FS_FREEZE asks, released whatever happens: AGENT freezes its
    filesystems through the guest agent, SUSPEND pauses it, anything else holds nothing."""
    if fs_freeze not in _HOLDS:
        yield
        return
    (hold, holding), (release, releasing) = _HOLDS[fs_freeze]
    virsh(host, hold, domain, what=f"{holding} {domain}")
    try:
        yield
    finally:
        virsh(host, release, domain, what=f"{releasing} {domain}")


def backup_xml(targets: dict[str, str], skipped: list[str], parent: Optional[str] = None) -> bytes:
    """A push-mode backup of the disks `targets` (target device: the new qcow2 QEMU writes), none of the
    `skipped` ones, of the changes since checkpoint `parent` if given."""
    root = etree.Element("domainbackup", mode="push")
    if parent:
        etree.SubElement(root, "incremental").text = parent
    disks = etree.SubElement(root, "disks")
    for dev, path in targets.items():
        disk = etree.SubElement(disks, "disk", name=dev, backup="yes", type="file")
        etree.SubElement(disk, "target", file=path)
        etree.SubElement(disk, "driver", type="qcow2")
    for dev in skipped:
        etree.SubElement(disks, "disk", name=dev, backup="no")
    return etree.tostring(root)


def _job_state(host: str, domain: str, *flags: str) -> dict[str, str]:
    return virsh_output.job_state(virsh(host, "domjobinfo", domain, *flags, what=f"Reading the job of {domain}"))


def _wait_for_backup(host: str, domain: str) -> None:
    """Until the job has ended, then its outcome: libvirt may clear the active job a moment before it
    records the ended one, so an ended job not recorded yet is asked about again, for a few seconds."""
    while _job_state(host, domain).get("Job type", "None") != "None":
        time.sleep(POLL_SECONDS)
    deadline = time.monotonic() + RECORD_WAIT
    done = _job_state(host, domain, "--completed")
    while done.get("Job type", "None") == "None" and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        done = _job_state(host, domain, "--completed")
    if done.get("Job type") != "Completed":
        reason = done.get("Error message") or done.get("Job type") or "no job recorded"
        raise DriverError(f"The backup job of {domain} did not complete: {reason}")


def _begin_backup(host: str, domain: str, options: list[str]) -> None:
    """`virsh backup-begin`, tried again where the files libvirt had just made were refused to it or to
    QEMU through the mount: QEMU's first open checked against the new file's attributes before libvirt
    gave it to QEMU's user ("Permission denied", on the volume as created), or libvirt's formatting of
    it refused the file's lock ("Failed to get shared \"write\" lock", on the replica-3 virt volume);
    each seen once in ~20 runs of the libvirt test. libvirt removes the files of a start that failed."""
    for attempt in range(1, BEGIN_TRIES + 1):
        try:
            virsh(host, "backup-begin", domain, *options, what=f"Starting the backup of {domain}")
            return
        except CommandError as exc:
            if attempt == BEGIN_TRIES or not any(refusal in exc.detail for refusal in BEGIN_REFUSALS):
                raise
            log.info(f"QEMU of {domain} could not open its backup files yet: starting again in {BEGIN_WAIT} s")
            time.sleep(BEGIN_WAIT)


def run_backup(host: str, domain: str, options: list[str], hold: contextlib.AbstractContextManager[Any]) -> None:
    """Run libvirt's push-mode backup (`virsh backup-begin` with `options`), started while `hold` holds
    the guest, and wait for its end. A job that fails or is interrupted while QEMU copies is stopped
    before its files go."""
    started = False
    try:
        with hold:
            _begin_backup(host, domain, options)
            started = True
        _wait_for_backup(host, domain)
        started = False
    finally:
        if started:        # the job's own failure stands: a job that has ended already cannot be stopped
            try:
                virsh(host, "domjobabort", domain, what=f"Stopping the backup of {domain}")
            except DriverError as exc:
                log.error(str(exc))


def copy_disk(host: str, vm: Vm, disk: Disk, staging: Staging, fmt: str) -> str:
    """A standalone copy of `fmt` of a running VM's disk, as the disk is when the copy starts, in a new
    temporary file of `staging`. The VM's QEMU makes it, by a push-mode backup of that disk alone, while
    the guest goes on running: QEMU reads its own view of the disk, which the mount's lags behind. QEMU
    writes a qcow2, converted to raw where `fmt` asks: a raw backup target is written out in full, holes
    and all."""
    domain, dev = _domain(vm), target_dev(disk)
    others = [other.get("TARGET") for other in vm.disks.values() if other.get("TARGET") not in ("", dev)]
    copied = staging.temp("qcow2")
    with xml_file(*os.path.split(staging.temp("xml")), backup_xml({dev: copied}, others)) as spec:
        log.info(f"QEMU of {domain} copies disk {disk.disk_id} ({dev})")
        run_backup(host, domain, ["--backupxml", spec], contextlib.nullcontext())
    if fmt == "qcow2":
        os.chmod(copied, 0o644)                      # libvirt makes the file its job writes private
        qemu.pad_to_sector(copied)
        return copied
    converted = staging.temp()
    qemu.convert(copied, converted, fmt, src_fmt="qcow2")
    return converted

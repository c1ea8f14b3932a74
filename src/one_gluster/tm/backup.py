"""TM `prebackup`, `postbackup` and their `_live` forms: OpenNebula's native VM backups (`onevm backup`)
of VMs on a gluster system datastore.

`prebackup` leaves in `<VM_DIR>/backup/` (`$BACKUP_BASE_PATH/<vmid>/backup/` where that is set, as the
backup datastore's `backup` action reads it) what that action uploads, laid out as OpenNebula's own
file drivers leave it: `disk.<id>.0`, a standalone qcow2 copy of each disk it names, and `vm.xml`,
the VM document in base64. `postbackup` removes the folder.

- Powered off: each disk is copied through the FUSE mount by `qemu.standalone_copy`: a byte copy of a
  self-contained qcow2, a conversion of anything else.
- Running: libvirt's push-mode backup (`virsh backup-begin`) has QEMU copy each disk, read through
  libgfapi from the point in time the job starts, while the guest goes on writing: no overlay to
  commit back afterwards. BACKUP_CONFIG/FS_FREEZE (AGENT: fsfreeze through the guest agent;
  SUSPEND: pause) holds the guest only until the job has started.

MODE=INCREMENT (changed-block tracking, OpenNebula's CBT mode) keeps, as OpenNebula's qcow2 driver
does, a persistent dirty bitmap `one-<vmid>-<n>` in each qcow2 disk from backup `n` on: the first
backup of a chain is a full one, each next one (`disk.<id>.<n>`) holds only the clusters written since
the previous one. Powered off, `increments` copies them; running, libvirt's push-mode backup does, with
a libvirt checkpoint of that name (`checkpoints`). Raw disks cannot keep a bitmap: such a backup is
refused before anything is written, as is INCREMENT_MODE=SNAPSHOT, whose overlays would move the
active layer away from the name that libgfapi opens.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
from typing import Iterator, NamedTuple, Optional

from one_gluster.core import increments, log, qemu
from one_gluster.core.errors import DriverError, RequestError
from one_gluster.core.staging import Staging
from one_gluster.core.tm_request import TmCall
from one_gluster.core.vm import Disk, Vm
from one_gluster.core.volume import MountedPath, refresh, require_some_mount
from one_gluster.tm import checkpoints, running_vm

USAGE = "host:VM_DIR DISK_IDS DEPLOY_ID BACKUP_JOB_ID VMID DSID"


class Chain(NamedTuple):
    """Where this backup stands in the VM's chain, from BACKUP_CONFIG as OpenNebula's drivers read it."""

    increment: int                   # n: the files are disk.<id>.<n>
    parent: Optional[str]            # the checkpoint changes are counted from; None: a full backup
    checkpoint: Optional[str]        # the checkpoint this backup starts; None in FULL mode


def chain_of(vm: Vm) -> Chain:
    """Where a backup of `vm` stands in its chain, or why it cannot be taken."""
    text = vm.backup_config.get
    mode = text("MODE").upper()
    if mode in ("", "FULL"):
        return Chain(0, None, None)
    if mode != "INCREMENT":
        raise RequestError(f"Unknown backup MODE {mode!r}: use FULL or INCREMENT")
    if text("INCREMENT_MODE").upper() not in ("", "CBT"):
        raise DriverError(f"The gluster system datastore keeps incremental backups with INCREMENT_MODE=CBT, "
                          f"not {text('INCREMENT_MODE')}: its overlays would move the disk away from the name "
                          "QEMU opens")
    last = text("LAST_INCREMENT_ID") or "-1"
    if not last.lstrip("-").isdigit() or int(last) < -1:
        raise RequestError(f"Expected a number in BACKUP_CONFIG/LAST_INCREMENT_ID, got {last!r}")
    parent = increments.checkpoint_name(vm.id, int(last)) if int(last) >= 0 else None
    return Chain(int(last) + 1, parent, increments.checkpoint_name(vm.id, int(last) + 1))


def _check_formats(disks: list[Disk], chain: Chain) -> None:
    for disk in disks if chain.checkpoint else ():
        if disk.format != "qcow2":
            raise DriverError(f"Disk {disk.disk_id} of VM {disk.vmid} is {disk.format}: incremental backups track "
                              "changes in qcow2 disks only; use MODE=FULL for this VM")


def backup_dir(vm_dir: str, vmid: int) -> str:
    """Where the backup datastore's `backup` action takes the files from."""
    base = os.environ.get("BACKUP_BASE_PATH")
    return os.path.join(base, str(vmid), "backup") if base else os.path.join(vm_dir, "backup")


def _fresh_dir(path: str) -> None:
    """An empty backup folder: what a failed backup left there goes first."""
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def _write_vm_xml(folder: str, raw: bytes) -> None:
    with Staging(os.path.join(folder, "vm.xml")) as staging:
        temp = staging.temp()
        with open(temp, "xb") as f:
            f.write(base64.encodebytes(raw))
        staging.commit(temp)


def _disks(vm: Vm, ids: list[int]) -> list[Disk]:
    missing = [disk_id for disk_id in ids if disk_id not in vm.disks]
    if missing:
        raise DriverError(f"VM {vm.id} has no disk {missing[0]} to back up")
    return [Disk(vm.id, disk_id, vm.disks[disk_id]) for disk_id in ids]


class Backup(NamedTuple):
    """A checked request, with its empty backup folder holding vm.xml."""

    vm_dir: MountedPath
    folder: str
    disks: list[Disk]
    vm: Vm
    chain: Chain

    def target(self, disk: Disk) -> str:
        return os.path.join(self.folder, f"disk.{disk.disk_id}.{self.chain.increment}")

    def source(self, disk: Disk) -> str:
        return os.path.join(self.vm_dir.path, f"disk.{disk.disk_id}")


def _prepare(call: TmCall) -> Backup:
    """Check the whole request, then leave an empty backup folder holding vm.xml."""
    call.expect(6, USAGE)
    vmid = call.number(4, "VM id")
    ids = call.disk_ids(1)
    document = call.vm_document(vmid)
    if document is None:
        raise RequestError("Expected the VM document on stdin")
    vm = document.vm
    chain = chain_of(vm)
    disks = _disks(vm, ids)
    _check_formats(disks, chain)
    vm_dir = require_some_mount(call.path(0).require_vm_dir(vmid).path)
    folder = backup_dir(vm_dir.path, vmid)
    _fresh_dir(folder)
    _write_vm_xml(folder, document.xml)
    return Backup(vm_dir, folder, disks, vm, chain)


@contextlib.contextmanager
def _or_nothing(folder: str) -> Iterator[None]:
    """A backup that fails leaves no folder for the backup datastore to take."""
    try:
        yield
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def prebackup(call: TmCall) -> None:
    """Backup of a powered-off VM: each disk copied into a standalone qcow2, or, in a chain of increments,
    the clusters written since the last backup."""
    backup = _prepare(call)
    chain = backup.chain
    with _or_nothing(backup.folder):
        for disk in backup.disks:
            src = backup.source(disk)
            if not os.path.exists(src):
                raise DriverError(f"Disk {disk.disk_id} of VM {disk.vmid} is missing: {src}")
            refresh(src)
            if chain.parent and chain.parent not in qemu.bitmaps(src):
                raise increments.broken_chain(f"Disk {disk.disk_id} of VM {disk.vmid}", chain.parent)
        for disk in backup.disks:
            src = backup.source(disk)
            log.info(f"Copying disk {disk.disk_id} into {backup.target(disk)}"
                     + (f" (changes since {chain.parent})" if chain.parent else ""))
            with Staging(backup.target(disk)) as staging:
                temp = staging.temp()
                if chain.parent:
                    increments.copy_changes(src, chain.parent, temp)
                else:
                    qemu.standalone_copy(src, temp, "qcow2", disk.format)
                staging.commit(temp)
        if chain.checkpoint:
            for disk in backup.disks:
                increments.restart_tracking(backup.source(disk), disk.vmid, chain.parent or "", chain.checkpoint)
    return None


def prebackup_live(call: TmCall) -> None:
    """Backup of a running VM: QEMU copies each disk, or in a chain of increments the clusters written
    since the last backup, into a standalone qcow2 (libvirt push mode)."""
    backup = _prepare(call)
    with _or_nothing(backup.folder):
        _push_backup(call.path(0).host, call.args[2], backup)
    return None


def _push_backup(host: str, domain: str, backup: Backup) -> None:
    """Run libvirt's push-mode backup of the disks into `disk.<id>.<n>`, starting the chain's next
    checkpoint with it, and wait for it."""
    chain = backup.chain
    with contextlib.ExitStack() as stack:
        targets = {}                                       # target device: (its staging, the file QEMU writes)
        for disk in backup.disks:
            dev = running_vm.target_dev(disk)
            staging = stack.enter_context(Staging(backup.target(disk)))
            targets[dev] = (staging, staging.temp())
        others = [dev for disk in backup.vm.disks.values() if (dev := disk.get("TARGET")) and dev not in targets]
        if chain.checkpoint:
            checkpoints.keep_only(host, domain, backup.disks, others, chain.parent, backup.folder)
        spec = running_vm.backup_xml({dev: temp for dev, (_, temp) in targets.items()}, others, chain.parent)
        options = ["--backupxml", stack.enter_context(running_vm.xml_file(backup.folder, ".backup.xml", spec))]
        if chain.checkpoint:
            spec = checkpoints.checkpoint_xml(chain.checkpoint, targets, others)
            checkpoint = stack.enter_context(running_vm.xml_file(backup.folder, ".checkpoint.xml", spec))
            options += ["--checkpointxml", checkpoint]
        freeze = backup.vm.backup_config.get("FS_FREEZE", "NONE").upper()
        log.info(f"Starting the backup of {', '.join(targets)} of {domain}"
                 + (f" (changes since {chain.parent})" if chain.parent else ""))
        running_vm.run_backup(host, domain, options, running_vm.quiesced(host, domain, freeze))
        for staging, temp in targets.values():
            if chain.parent:         # libvirt made each increment over its disk: kept, it holds only the changes
                qemu.detach(temp)
            staging.commit(temp)


def postbackup(call: TmCall) -> None:
    """Remove the backup folder once the backup datastore has taken it; already gone is fine."""
    call.expect(6, USAGE)
    vmid = call.number(4, "VM id")
    vm_dir = require_some_mount(call.path(0).require_vm_dir(vmid).path)
    folder = backup_dir(vm_dir.path, vmid)
    shutil.rmtree(folder, ignore_errors=True)
    if os.environ.get("BACKUP_BASE_PATH"):
        shutil.rmtree(os.path.dirname(folder), ignore_errors=True)
    log.info(f"Removed {folder}")
    return None


postbackup_live = postbackup     # a push-mode backup leaves nothing on the running VM to undo

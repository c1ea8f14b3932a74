"""TM prebackup/postbackup of a powered-off VM (the live forms run in tests/e2e/test_libvirt_domain.py),
driven as oned's VMM drives them: `host:VM_DIR DISK_IDS DEPLOY_ID BJID VMID DSID`, the VM document on
stdin. What the backup datastore would upload is checked with qemu-img: full copies compared with the
disks, increments holding only what was written since the last backup and, stacked as a restore
stacks them, the disk as it is."""

from __future__ import annotations

import base64
import os
import shutil

from lxml import etree

import onedsim
from support.drivers import deploy, gluster_disk, imported
from support.images import bitmaps, held_extents, qemu_img, qemu_io, restored

MiB = 1 << 20


def vm_document(tm, vmid: int, **backup_config: str) -> bytes:
    node = etree.fromstring(etree.tostring(tm.api.vms[vmid]))
    config = node.find("BACKUPS/BACKUP_CONFIG")
    for key, value in backup_config.items():
        etree.SubElement(config, key).text = value
    return etree.tostring(node)


def backup_vm(tm, ds, sources_dir, vm_ids) -> int:
    """A powered-off VM with a qcow2 clone (written to since), a persistent raw disk and a standalone
    qcow2 copy (which the backup copies byte for byte; the others it converts)."""
    image, _ = imported(ds, sources_dir, "bk-os", "qcow2")
    data, _ = imported(ds, sources_dir, "bk-data", "raw")
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, image, "qcow2", target="vda"),
           gluster_disk(1, data, "raw", clone=False, target="vdb"),
           gluster_disk(2, image, "qcow2", target="vdc", extra={"QCOW2_STANDALONE": "YES"}),
           lcm_state=70)                                                                   # BACKUP_POWEROFF
    tm.ok("clone", f"vm:{image}", tm.disk(vmid, 0), vmid, 101)
    tm.ok("ln", f"vm:{data}", tm.disk(vmid, 1), vmid, 101)
    tm.ok("clone", f"vm:{image}", tm.disk(vmid, 2), vmid, 101)
    qemu_io(str(tm.real(vmid, 2)), f"write -P 0x5c {4 * MiB} {MiB}")
    qemu_io(str(tm.real(vmid, 0)), f"write -P 0x6b {8 * MiB} {MiB}")
    return vmid


def test_backup_of_a_powered_off_vm(tm, ds, sources_dir, vm_ids):
    vmid = backup_vm(tm, ds, sources_dir, vm_ids)
    vm_dir = tm.real(vmid)
    doc = vm_document(tm, vmid, MODE="FULL")
    args = (f"{tm.host}:{tm.location}/100/{vmid}", "0:1:2", f"one-{vmid}", "-", vmid, 100)
    tm.ok("prebackup", *args, stdin=doc)

    folder = vm_dir / "backup"
    assert sorted(os.listdir(folder)) == ["disk.0.0", "disk.1.0", "disk.2.0", "vm.xml"]
    assert base64.b64decode((folder / "vm.xml").read_bytes()) == doc
    for disk_id in (0, 1, 2):
        info = qemu_img("info", "--output=json", str(folder / f"disk.{disk_id}.0"))
        assert '"format": "qcow2"' in info and "backing-filename" not in info
        fmt = "raw" if disk_id == 1 else "qcow2"      # the image in place; the clones with what the VM wrote
        assert "Images are identical" in qemu_img("compare", "-F", fmt, str(folder / f"disk.{disk_id}.0"),
                                                  str(vm_dir / f"disk.{disk_id}"))

    tm.ok("postbackup", *args, stdin=doc)
    assert not folder.exists()
    assert sorted(os.listdir(vm_dir)) == ["disk.0", "disk.1", "disk.2"]


def test_backup_to_backup_base_path(tm, ds, sources_dir, vm_ids, tmp_path):
    vmid = backup_vm(tm, ds, sources_dir, vm_ids)
    env = {"BACKUP_BASE_PATH": str(tmp_path)}
    args = (f"{tm.host}:{tm.location}/100/{vmid}", "1", f"one-{vmid}", "7", vmid, 100)
    tm.ok("prebackup", *args, stdin=vm_document(tm, vmid), env=env)
    assert sorted(os.listdir(tmp_path / str(vmid) / "backup")) == ["disk.1.0", "vm.xml"]
    assert not (tm.real(vmid) / "backup").exists()
    tm.ok("postbackup", *args, env=env)
    assert not (tmp_path / str(vmid)).exists()


def test_incremental_backups_of_a_powered_off_vm(tm, ds, sources_dir, vm_ids, tmp_path):
    vmid = backup_vm(tm, ds, sources_dir, vm_ids)
    vm_dir, folder, archive = tm.real(vmid), tm.real(vmid) / "backup", tmp_path / "archive"
    archive.mkdir()
    args = (f"{tm.host}:{tm.location}/100/{vmid}", "0:2", f"one-{vmid}", "3", vmid, 100)
    writes = {1: (16 * MiB, 64 << 10), 2: (20 * MiB, 2 * MiB)}         # what disk 0 gets before increment n
    for n in range(3):
        if n:
            assert "wrote" in qemu_io(str(vm_dir / "disk.0"), f"write -P 0x{0x40 + n:x} {writes[n][0]} {writes[n][1]}")
        doc = vm_document(tm, vmid, MODE="INCREMENT", LAST_INCREMENT_ID=str(n - 1))
        tm.ok("prebackup", *args, stdin=doc)
        assert sorted(os.listdir(folder)) == [f"disk.0.{n}", f"disk.2.{n}", "vm.xml"]
        for disk_id in (0, 2):
            made = folder / f"disk.{disk_id}.{n}"
            assert "backing-filename" not in qemu_img("info", "--output=json", str(made))
            if n:       # only the clusters written since the last backup: disk 2 was not written to
                assert held_extents(made) == ([writes[n]] if disk_id == 0 else [])
            shutil.copy(made, archive)
            whole = restored(archive, tmp_path / f"restore-{disk_id}-{n}", disk_id, n)
            assert "Images are identical" in qemu_img("compare", str(whole), str(vm_dir / f"disk.{disk_id}"))
            # the parent's bitmap stays for a retry of this increment; older ones go
            assert bitmaps(vm_dir / f"disk.{disk_id}") == sorted({f"one-{vmid}-{max(n - 1, 0)}", f"one-{vmid}-{n}"})
        tm.ok("postbackup", *args, stdin=doc)
    assert sorted(os.listdir(vm_dir)) == ["disk.0", "disk.1", "disk.2"]

    # a reverted snapshot ends the chain: the next increment is refused, a new full backup starts one
    tm.ok("snap_create", tm.disk(vmid, 0), 0, vmid, 101)
    tm.ok("snap_revert", tm.disk(vmid, 0), 0, vmid, 101)
    assert bitmaps(vm_dir / "disk.0") == []
    refused = tm.call("prebackup", *args, stdin=vm_document(tm, vmid, MODE="INCREMENT", LAST_INCREMENT_ID="2"))
    assert refused.returncode != 0 and "onevm backup --reset" in refused.stderr, refused.stderr
    assert not folder.exists()
    tm.ok("prebackup", *args, stdin=vm_document(tm, vmid, MODE="INCREMENT", LAST_INCREMENT_ID="-1"))
    assert bitmaps(vm_dir / "disk.0") == [f"one-{vmid}-0"]


def test_refused_backups_leave_nothing(tm, ds, sources_dir, vm_ids):
    vmid = backup_vm(tm, ds, sources_dir, vm_ids)
    vm_dir = f"{tm.host}:{tm.location}/100/{vmid}"
    cases = [
        (("0:1", vm_document(tm, vmid, MODE="INCREMENT")), "Disk 1 of VM"),                 # raw: no bitmaps
        (("0", vm_document(tm, vmid, MODE="INCREMENT", INCREMENT_MODE="SNAPSHOT")), "INCREMENT_MODE=CBT"),
        (("0", vm_document(tm, vmid, MODE="INCREMENT", LAST_INCREMENT_ID="4")), "onevm backup --reset"),
        (("0", vm_document(tm, vmid, MODE="INCREMENT", LAST_INCREMENT_ID="x")), "LAST_INCREMENT_ID"),
        (("0", vm_document(tm, vmid, MODE="DIFFERENTIAL")), "Unknown backup MODE"),
        (("0:x", vm_document(tm, vmid)), "disk ids"),
        (("0:5", vm_document(tm, vmid)), "no disk 5"),
        (("0", b""), "VM document on stdin"),
        (("0", base64.b64encode(etree.tostring(onedsim.vm(vmid + 1, [])))), f"not that of VM {vmid}"),
    ]
    cases = [(("prebackup", *case), message) for case, message in cases]
    cases.append((("prebackup_live", "0:1", vm_document(tm, vmid, MODE="INCREMENT")), "Disk 1 of VM"))  # before libvirt
    for (action, disk_ids, stdin), message in cases:
        done = tm.call(action, vm_dir, disk_ids, f"one-{vmid}", "-", vmid, 100, stdin=stdin)
        assert done.returncode != 0 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert not (tm.real(vmid) / "backup").exists()

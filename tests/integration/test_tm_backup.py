"""TM prebackup/postbackup of a powered-off VM (the live forms run in tests/e2e/test_libvirt_domain.py),
driven as oned's VMM drives them: `host:VM_DIR DISK_IDS DEPLOY_ID BJID VMID DSID`, the VM document on
stdin. What the backup datastore would upload is checked with qemu-img."""

from __future__ import annotations

import base64
import os

from lxml import etree

from one_gluster import onedsim
from conftest import deploy, gluster_disk, imported, qemu_img, qemu_io

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


def test_refused_backups_leave_nothing(tm, ds, sources_dir, vm_ids):
    vmid = backup_vm(tm, ds, sources_dir, vm_ids)
    vm_dir = f"{tm.host}:{tm.location}/100/{vmid}"
    cases = [
        (("0", vm_document(tm, vmid, MODE="INCREMENT")), "FULL backups only"),
        (("0:x", vm_document(tm, vmid)), "disk ids"),
        (("0:5", vm_document(tm, vmid)), "no disk 5"),
        (("0", b""), "VM document on stdin"),
        (("0", base64.b64encode(etree.tostring(onedsim.vm(vmid + 1, [])))), f"not that of VM {vmid}"),
    ]
    for (disk_ids, stdin), message in cases:
        done = tm.call("prebackup", vm_dir, disk_ids, f"one-{vmid}", "-", vmid, 100, stdin=stdin)
        assert done.returncode != 0 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert not (tm.real(vmid) / "backup").exists()

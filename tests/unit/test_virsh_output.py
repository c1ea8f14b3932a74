"""What virsh prints and QEMU answers through it, read by the pure readers over outputs recorded from
libvirt 9 and QEMU 7.2 here (tests/fixtures/libvirt), while the libvirt test's VM 10 ran from gluster
disks: a qcow2 clone with snapshot one-snap-1 (vda), a persistent qcow2 disk (vdb) and a raw clone
(vdc), during its chain of incremental backups."""

from __future__ import annotations

from pathlib import Path

import pytest

from one_gluster.core import virsh_output
from one_gluster.core.errors import DriverError

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "libvirt"


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def qmp(name: str):
    return virsh_output.qmp_return(recorded(name), "query-block", "one-10")


def test_libvirt_aliases_of_the_disks_by_target():
    xml = recorded("dumpxml-running.xml")
    assert [virsh_output.disk_alias(xml, dev) for dev in ("vda", "vdb", "vdc", "vdz")] == [
        "virtio-disk0", "virtio-disk1", "virtio-disk2", ""]


def test_the_image_qemu_has_open_for_a_disk_and_its_snapshots():
    devices = qmp("qmp-query-block.json")
    vda = virsh_output.inserted(devices, "virtio-disk0")
    assert vda["node-name"] == "libvirt-3-format" and vda["drv"] == "qcow2"
    assert virsh_output.snapshot_names(vda) == ["one-snap-1"]
    assert virsh_output.snapshot_names(virsh_output.inserted(devices, "virtio-disk2")) == []
    assert virsh_output.inserted(devices, "virtio-disk9") is None
    assert virsh_output.inserted(devices, "virtio") is None          # a qdev path component, not a prefix


def test_the_dirty_bitmaps_of_a_block_node():
    nodes = qmp("qmp-query-named-block-nodes.json")
    assert virsh_output.bitmaps(nodes, "libvirt-3-format") == ["one-10-1", "one-10-0"]
    assert virsh_output.bitmaps(nodes, "libvirt-1-format") == []     # the raw disk keeps none
    assert virsh_output.bitmaps(nodes, "no-such-node") is None


def test_an_error_reply_is_one_line_with_qemu_s_reason():
    with pytest.raises(DriverError) as failed:
        virsh_output.qmp_return(recorded("qmp-error.json"), "block-dirty-bitmap-remove", "one-10")
    assert str(failed.value) == "QEMU block-dirty-bitmap-remove on one-10 failed: Node 'no-such-node' not found"


@pytest.mark.parametrize("name, job_type, operation", [
    ("domjobinfo-none.txt", "None", None), ("domjobinfo-backup.txt", "Unbounded", "Backup"),
    ("domjobinfo-completed.txt", "Completed", "Backup")])
def test_domjobinfo(name, job_type, operation):
    state = virsh_output.job_state(recorded(name))
    assert state["Job type"] == job_type and state.get("Operation") == operation

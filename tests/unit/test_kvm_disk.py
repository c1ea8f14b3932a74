"""The gluster network disk and the file disk against the deployment file oned rendered, and gluster://
URIs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from lxml import etree

from one_gluster.core.kvm_disk import disk_element, disk_name, file_disk_element, uri
from one_gluster.core.volume import Server, parse_servers
from one_gluster.core.xmldoc import parse_xml


def rendered_disk(fixtures, name: str, kind: str = "network", index: int = 0) -> etree._Element:
    domain = parse_xml((fixtures / name).read_bytes(), "deployment file")
    disk = domain.findall(f"devices/disk[@type='{kind}']")[index]
    disk.remove(disk.find("address"))                   # placement is the VMM's, not the storage's
    return disk


def tree(node: etree._Element) -> tuple:
    """Tag, attributes and children in order; indentation and namespace declarations aside."""
    return node.tag, dict(node.attrib), [tree(child) for child in node]


@pytest.mark.parametrize("deployment,vmid,source,clone", [
    ("deployment-vm0.xml", 0, "/var/lib/one//datastores/101/c6bb6bdaba3fdb23c737cadb2633fa4d", True),
    ("deployment-vm1.xml", 1, "/var/lib/one//datastores/101/c6bb6bdaba3fdb23c737cadb2633fa4d", False),
])
def test_same_element_as_core(fixtures, deployment, vmid, source, clone):
    name = disk_name("onee2e", vmid, 0, source, clone)
    ours = disk_element(name, parse_servers("127.0.1.1:24007"), "qcow2", target="sda")
    assert tree(ours) == tree(rendered_disk(fixtures, deployment))


@pytest.mark.parametrize("index, disk_id, target", [(0, 1, "sdb"), (1, 2, "sdc")])
def test_same_file_disk_as_core(fixtures, index, disk_id, target):
    """DISK_TYPE=FILE: core writes the disk's path in the VM directory of the system datastore (here the
    volatile disks of VM 0, which core renders the same way)."""
    path = f"/var/lib/one//datastores/100/0/disk.{disk_id}"
    ours = file_disk_element(path, "raw", target=target)
    assert tree(ours) == tree(rendered_disk(fixtures, "deployment-vm0.xml", "file", index))
    cli = subprocess.run([sys.executable, "-m", "one_gluster.admin.cli", "disk-xml", "--file", path, "--format", "raw",
                          "--target", target, "--bus", ""], capture_output=True, text=True, check=True)
    assert tree(etree.fromstring(cli.stdout)) == tree(ours)


def test_every_host_and_default_port():
    disk = disk_element("vol/3/disk.1", parse_servers("gs1 gs2:24008 [fd00::3]"), "raw", bus="virtio")
    hosts = [(h.get("name"), h.get("port"), h.get("transport")) for h in disk.iterfind("source/host")]
    assert hosts == [("gs1", "24007", "tcp"), ("gs2", "24008", "tcp"), ("fd00::3", "24007", "tcp")]
    assert disk.find("driver").get("type") == "raw" and disk.find("target").get("bus") == "virtio"


def test_cdrom_is_readonly():
    disk = disk_element("vol/iso", parse_servers("gs1"), "raw", device="cdrom")
    assert disk.get("device") == "cdrom" and disk.find("readonly") is not None


def test_uris_in_qemu_syntax():
    assert uri("vol/0/disk.0", Server("gs1")) == "gluster://gs1/vol/0/disk.0"
    assert uri("/vol/x", Server("gs1", 24007)) == "gluster://gs1:24007/vol/x"
    assert uri("vol/x", Server("fd00::1", 24007)) == "gluster://[fd00::1]:24007/vol/x"
    assert uri("vol/x", Server("gs1"), "rdma") == "gluster+rdma://gs1/vol/x"
    assert uri("vol/x", transport="unix", socket="/var/run/glusterd.socket") == \
        "gluster+unix:///vol/x?socket=/var/run/glusterd.socket"
    with pytest.raises(ValueError):
        uri("vol/x", transport="unix")


def test_cli_disk_xml_and_uri():
    run = lambda *a: subprocess.run([sys.executable, "-m", "one_gluster.admin.cli", *a], capture_output=True, text=True)
    out = run("disk-xml", "--host", "h1:24007 h2", "--volume", "onee2e", "--vmid", "7", "--disk-id", "2", "--clone")
    disk = etree.fromstring(out.stdout)
    assert disk.find("source").get("name") == "onee2e/7/disk.2" and len(disk.findall("source/host")) == 2
    assert run("uri", "onee2e/7/disk.2", "--host", "h1:24007").stdout == "gluster://h1:24007/onee2e/7/disk.2\n"
    bad = run("uri", "vol/x", "--transport", "unix")
    assert bad.returncode == 2 and "socket" in bad.stderr

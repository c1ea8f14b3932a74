"""TM arguments split as OpenNebula's arg_host / arg_path split them."""

from __future__ import annotations

import pytest

from one_gluster.errors import RequestError
from one_gluster.tm.paths import HostPath


def test_host_and_path_with_doubled_slashes():
    assert HostPath.parse("node1:/var/lib/one//datastores/100/5/disk.0") == \
        HostPath("node1", "/var/lib/one/datastores/100/5/disk.0")
    assert HostPath.parse("fe://var//lib/one/datastores/101/abc/") == HostPath("fe", "/var/lib/one/datastores/101/abc")
    assert HostPath.parse("//var/lib/one/datastores/100/5") == HostPath("", "/var/lib/one/datastores/100/5")
    for bad in ("node1:var/lib", "node1:", "disk.0"):
        with pytest.raises(RequestError):
            HostPath.parse(bad)


def test_disk_ids_and_vm_dir():
    disk = HostPath.parse("n:/ds/100/7/disk.12")
    assert (disk.disk_id, disk.vm_dir) == (12, "/ds/100/7")
    vm_dir = HostPath.parse("n:/ds/100/7")
    assert (vm_dir.disk_id, vm_dir.vm_dir) == (None, "/ds/100/7")
    for name in ("disk.x", "disk.", "disk.1.snap", "disk.²", "disks.1", "disk"):
        assert HostPath("n", f"/ds/100/7/{name}").disk_id is None, name
    with pytest.raises(RequestError):
        vm_dir.require_disk_id()

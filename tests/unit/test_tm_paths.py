"""TM arguments split as OpenNebula's arg_host / arg_path split them."""

from __future__ import annotations

import io

import pytest

from one_gluster.core.errors import RequestError
from one_gluster.core.tm_request import HostPath, TmCall


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


def test_paths_of_a_vm():
    assert HostPath.parse("n:/ds/100/7/disk.0").require_in_vm(7).path == "/ds/100/7/disk.0"
    assert HostPath.parse("n:/ds/100/7/kernel").require_in_vm(7).path == "/ds/100/7/kernel"
    assert HostPath.parse("n:/ds//100/7").require_vm_dir(7).path == "/ds/100/7"
    assert HostPath.parse("n:/ds/100/7/disk.3").require_vm_path(7).path == "/ds/100/7/disk.3"
    for text in ("n:/ds/100/8/disk.0", "n:/ds/100/7/../8/disk.0", "n:/ds/100/7", "n:/ds/100/70/disk.0"):
        with pytest.raises(RequestError, match="it is not a file of VM 7"):
            HostPath.parse(text).require_in_vm(7)
    for text in ("n:/ds/100", "n:/ds/x/7", "n:/ds/100/7/..", "n:/ds/100/07", "n:/ds/１００/7"):
        with pytest.raises(RequestError, match="it is not the directory of VM 7"):
            HostPath.parse(text).require_vm_dir(7)
    with pytest.raises(RequestError, match="it is not a file of VM 7"):
        HostPath.parse("n:/ds/100/8/disk.0").require_vm_path(7)


def test_numbers_are_what_oned_writes():
    call = TmCall("resize", ("-1", "42", "١٠", " 5", "1_000", str(2**31), str(2**43 - 1), "9" * 21), io.BytesIO())
    assert (call.number(0, "snapshot id"), call.number(1, "VM id"), call.size_mb(6)) == (-1, 42, 2**43 - 1)
    for index in (2, 3, 4, 7):
        with pytest.raises(RequestError, match="argument is not a number"):
            call.number(index, "VM id")
    with pytest.raises(RequestError, match=r"out of range: 2147483648 \(at most 2147483647\)"):
        call.number(5, "VM id")


def test_images_of_a_datastore():
    assert HostPath.parse("/ds//101/" + "ab" * 16).require_in_datastore(101).path == "/ds/101/" + "ab" * 16
    for text in ("/ds/100/7/disk.0", "/ds/1010/x", "/ds/101/sub/x", "/ds/101"):
        with pytest.raises(RequestError, match="it is not an image of datastore 101"):
            HostPath.parse(text).require_in_datastore(101)

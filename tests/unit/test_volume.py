"""GLUSTER_HOST / GLUSTER_VOLUME parsing and finding the mount that holds a path."""

from __future__ import annotations

import os

import pytest

from one_gluster.core.ds_request import Template
from one_gluster.core.errors import DriverError, RequestError
from one_gluster.core.volume import MountedPath, Server, Volume, mount_of, parse_servers, read_mounts

MOUNTINFO = r"""22 1 0:21 / / rw - ext4 /dev/vda rw
40 22 0:39 / /var/lib/one/datastores/100 rw,relatime - fuse.glusterfs 127.0.1.1:/onee2e rw,user_id=0
41 22 0:40 / /mnt/with\040space rw - fuse.glusterfs gs1:/vol2/sub rw
"""


def test_servers_like_core():
    assert parse_servers("gs1:24007 gs2  gs3:24008") == (Server("gs1", 24007), Server("gs2"), Server("gs3", 24008))
    assert parse_servers("[fd00::1]:24007 [fd00::2]") == (Server("fd00::1", 24007), Server("fd00::2"))
    assert Server("gs2").effective_port == 24007
    for bad in ("gs1:port", "gs1:0", "[fd00::1", ":24007"):
        with pytest.raises(RequestError):
            Server.parse(bad)


def test_volume_with_subdirectory():
    v = Volume.from_template(Template({"GLUSTER_VOLUME": "vol/images/", "GLUSTER_HOST": "h1 h2"}))
    assert (v.name, v.subdir, len(v.servers)) == ("vol", "images", 2)
    for bad in ("", "vol/../x", "bad name", "vol\n", "völ"):
        with pytest.raises(RequestError):
            Volume.from_template(Template({"GLUSTER_VOLUME": bad}))


def test_mount_of_longest_prefix(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    mounts = read_mounts(str(info))
    m = mount_of("/var/lib/one/datastores/100/0/disk.0", mounts)
    assert (m.fstype, m.volume_name, m.volume_path) == ("fuse.glusterfs", "onee2e", "onee2e")
    assert mount_of("/var/lib/one/datastores/1000", mounts).mount_point == "/"
    spaced = mount_of("/mnt/with space/x", mounts)
    assert spaced.volume_name == "vol2" and spaced.volume_path == "vol2/sub"
    fs = os.statvfs("/")                   # what proved the mount alive: irrelevant to the names
    assert MountedPath("/mnt/with space/a/b", spaced, fs).volume_path == "vol2/sub/a/b"
    assert MountedPath("/var/lib/one/datastores/100", m, fs).volume_path == "onee2e"
    with pytest.raises(DriverError):
        mount_of("/x", [])

"""The gluster CLI's XML output, read by the pure parsers over outputs recorded from gluster 10.3 on
the test volumes (tests/fixtures/gluster): a replica-3 volume tuned with the virt group, a plain one."""

from __future__ import annotations

from pathlib import Path

import pytest

from one_gluster.core import gluster_xml
from one_gluster.core.errors import DriverError

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "gluster"
BRICKS = "/tmp/pytest-of-root/pytest-0/virt0/bricks/ogvirt"


def output(name: str, command: str = "volume info"):
    return gluster_xml.cli_output((RECORDED / name).read_bytes(), command)


def test_a_failed_operation_is_one_line_with_gluster_s_reason():
    with pytest.raises(DriverError) as failed:
        output("volume-info-missing.xml", "volume info nosuchvol")
    assert str(failed.value) == "gluster volume info nosuchvol: Volume does not exist"


def test_volume_list():
    assert gluster_xml.volume_names(output("volume-list.xml")) == ["ogtest", "ogvirt"]


def test_volume_info_of_a_replica_3_volume():
    info = gluster_xml.volume_info(output("volume-info-replica3.xml"), "ogvirt")
    assert (info.name, info.status, info.type, info.started) == ("ogvirt", "Started", "Replicate", True)
    assert (info.replica_count, info.arbiter_count, info.disperse_count) == (3, 0, 0)
    assert [brick.name for brick in info.bricks] == [f"127.0.1.1:{BRICKS}/b{i}" for i in range(3)]
    assert info.options["features.shard"] == "on" and info.options["network.ping-timeout"] == "20"


def test_volume_info_of_a_plain_volume():
    info = gluster_xml.volume_info(output("volume-info-plain.xml"), "ogtest")
    assert (info.type, info.replica_count, len(info.bricks)) == ("Distribute", 1, 1)
    assert info.bricks[0].host == "127.0.1.1" and info.bricks[0].path.endswith("/bricks/ogtest/b0")


def test_volume_info_without_a_volume_is_none():
    empty = gluster_xml.cli_output(b"<cliOutput><opRet>0</opRet><volInfo><volumes><count>0</count></volumes>"
                                   b"</volInfo></cliOutput>", "volume info x")
    assert gluster_xml.volume_info(empty, "x") is None


def test_brick_status_lists_bricks_not_daemons():
    bricks = gluster_xml.brick_status(output("volume-status-replica3.xml"))
    assert [(b.path, b.online) for b in bricks] == [(f"{BRICKS}/b{i}", True) for i in range(3)]
    assert all(b.pid and b.pid > 0 for b in bricks)


def test_brick_status_of_a_killed_brick():
    bricks = gluster_xml.brick_status(output("volume-status-brick-down.xml"))
    assert [(b.name, b.online) for b in bricks] == [
        (f"127.0.1.1:/tmp/mig/reclab/bricks/ogrec/b{i}", i > 0) for i in range(3)]
    assert bricks[0].pid is None and all(b.pid for b in bricks[1:])


def test_volume_info_of_a_stopped_volume():
    info = gluster_xml.volume_info(output("volume-info-stopped.xml"), "ogrec")
    assert (info.status, info.started, info.replica_count) == ("Stopped", False, 3)


def test_effective_options_drop_the_default_mark():
    options = gluster_xml.effective_options(output("volume-get-all.xml"))
    assert len(options) == 336                                   # 342 entries: gluster lists 6 twice
    assert options["cluster.lookup-unhashed"] == "on"            # recorded as "on (DEFAULT)"
    assert options["features.shard"] == "on" and options["performance.quick-read"] == "off"


def test_group_options_skip_comments_and_blank_lines():
    text = "# the virt group\nperformance.quick-read=off\n\n  features.shard = on\nnot an option\n"
    assert gluster_xml.group_options(text) == {"performance.quick-read": "off", "features.shard": "on"}


def test_peers_of_a_pool_as_server_1_sees_them():
    assert gluster_xml.peers(output("peer-status.xml", "peer status")) == {"127.1.1.2": True, "127.1.1.3": True}

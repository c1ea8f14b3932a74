"""A real trusted pool of three gluster servers on this machine (`one-gluster lab up --servers 3`: one
glusterd each on 127.1.1.1-3, a replica-3 volume with one brick per server), with
GLUSTER_HOST="127.1.1.1 127.1.1.2 127.1.1.3": server 1 lost, and back. The default glusterd is stopped
while the pool runs (its own port 24007 is on every address), and started again after."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from one_gluster.admin import mounts
from one_gluster.admin.pool import Pool
from one_gluster.core import gluster, gluster_xml, qemu
from support.images import qemu_img
from support.labs import fuse_client
from support.system import wait_for

HOSTS = "127.1.1.1 127.1.1.2 127.1.1.3"


@pytest.fixture(scope="module")
def pool(tmp_path_factory, glusterd) -> Iterator[Pool]:
    root = tmp_path_factory.mktemp("pool")
    pool = Pool(root=str(root), volume="ogpool", servers=3, mount_point=str(root / "datastores" / "100"),
                stop_glusterd=True)
    try:
        pool.up()
        yield pool
    finally:
        pool.down()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "one_gluster.admin.cli", *args], capture_output=True, text=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_default_glusterd_is_stopped_only_when_asked(tmp_path, glusterd):
    done = cli("lab", "up", "--servers", "3", "--dir", str(tmp_path))
    assert done.returncode == 2 and "give --stop-glusterd" in done.stderr
    assert not (tmp_path / "pool" / "bricks").exists()


def test_the_pool_is_three_servers_with_a_brick_each(pool):
    status = pool.status()
    assert status["servers"] == {a: "up" for a in HOSTS.split()}
    assert status["peers"] == {"127.1.1.2": "connected", "127.1.1.3": "connected"}
    assert sorted(status["bricks"]) == sorted(f"{s.address}:{b}" for s, b in zip(pool.members, pool.bricks))
    assert set(status["bricks"].values()) == {"online"} and status["mount"] == "mounted"
    assert "--volfile-server=127.1.1.1 --volfile-server=127.1.1.2 --volfile-server=127.1.1.3" in \
        fuse_client(Path(pool.mount_point))[1]
    info = gluster_xml.volume_info(gluster.cli("volume", "info", "ogpool", remote="127.1.1.2"), "ogpool")
    assert (info.replica_count, [b.host for b in info.bricks]) == (3, HOSTS.split())   # any server answers


def test_server_1_lost_and_back(pool, tmp_path):
    mount = Path(pool.mount_point)
    (mount / "before").write_bytes(os.urandom(1 << 20))
    image = mount / "disk.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(image), "64M")
    qemu.pad_to_sector(str(image))                  # libgfapi reads a qcow2 written through FUSE only so
    pool.members[0].lose()

    # a mount that is up keeps serving, writes included
    (mount / "during").write_bytes(os.urandom(1 << 20))
    assert (mount / "before").stat().st_size == 1 << 20

    # a new mount through `one-gluster mount` comes up through server 2
    node = tmp_path / "node"
    done = cli("mount", "ogpool", "--host", HOSTS, "--system", "100", "--datastores", str(node), "--owner",
               "0:0", "--json")
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert (node / "100" / "during").read_bytes() == (mount / "during").read_bytes()
    finally:
        mounts.unmount(str(node / "100"))

    # QEMU opens a disk through libgfapi from core's <disk> (every GLUSTER_HOST a server), server 1 down
    servers = [{"type": "inet", "host": host, "port": "24007"} for host in HOSTS.split()]
    opened = json.loads(qemu_img("info", "--output=json", "json:" + json.dumps(
        {"driver": "qcow2", "file": {"driver": "gluster", "volume": "ogpool", "path": "disk.qcow2",
                                     "server": servers}})))
    assert opened["format"] == "qcow2" and opened["virtual-size"] == 64 << 20

    # `one-gluster check` through a server that answers names the lost server and its brick
    done = cli("check", "ogpool", "--host", "127.1.1.2", "--owner", "0:0", "--json")
    found = {item["check"]: item for item in json.loads(done.stdout)["items"]}
    assert found["peer 127.1.1.1"]["status"] == "fail" and "disconnected" in found["peer 127.1.1.1"]["found"]
    assert any(item["status"] != "ok" and pool.bricks[0] in item["check"] + item["found"]
               for item in found.values()), found

    # server 1 back: self-heal brings its brick level with the others, byte for byte
    pool.restore(pool.members[0])
    assert wait_for(lambda: pool.heal_pending() == 0, 120, poll=2), pool.heal_pending()
    for name in ("before", "during", "disk.qcow2"):
        assert len({digest(Path(brick) / name) for brick in pool.bricks}) == 1, name

"""`one-gluster check` and `prepare` against real loopback volumes: a single-brick plain volume, a
replica-3 volume before and after prepare, the volume stopped, bricks killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from one_gluster.admin import lab as labmod
from one_gluster.core import gluster

HOST = "127.0.1.1"
OWNER = "9869:9869"          # oneadmin's ids in OpenNebula's packages


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "one_gluster.admin.cli", *args], capture_output=True, text=True)


def findings(volume: str, *args: str) -> tuple[int, dict[str, dict]]:
    done = cli("check", volume, "--owner", OWNER, "--json", *args)
    return done.returncode, {item["check"]: item for item in json.loads(done.stdout)["items"]}


@pytest.fixture(scope="module")
def plain(tmp_path_factory, glusterd):
    volume = labmod.Lab(root=str(tmp_path_factory.mktemp("plain")), volume="ogplain", host=HOST)
    volume.up()
    yield volume
    volume.down()


@pytest.fixture(scope="module")
def replica(tmp_path_factory, glusterd):
    volume = labmod.Lab(root=str(tmp_path_factory.mktemp("rep3")), volume="ogrep3c", host=HOST, replica=3)
    volume.up()
    yield volume
    volume.down()


def test_single_brick_volume_is_warned_and_prepared_with_the_distributed_virt_group(plain):
    code, found = findings("ogplain")
    assert code == 1
    assert found["type"]["status"] == "warn" and "no replica" in found["type"]["found"]
    assert "add-brick ogplain replica 3" in found["type"]["fix"]
    assert found["virt options"]["found"].endswith("differ from /var/lib/glusterd/groups/distributed-virt")
    assert "quorum" not in found                     # no client quorum without replicas

    done = cli("prepare", "ogplain", "--owner", OWNER)
    assert done.returncode == 1, done.stdout        # still warned: no replica
    assert "network.remote-dio" in done.stdout and "storage.owner-uid" in done.stdout
    code, found = findings("ogplain")
    assert found["virt options"]["status"] == "ok" and found["owner"]["status"] == "ok"
    assert [f for f, v in found.items() if v["status"] == "warn"] == ["type"]
    assert gluster.effective_options("ogplain")["network.remote-dio"] == "enable"


def test_replica_3_before_and_after_prepare(replica):
    code, found = findings("ogrep3c")
    assert code == 1
    assert found["type"] == {"status": "ok", "check": "type", "found": "Replicate, replica 3", "fix": ""}
    assert found["bricks 1-3"]["found"] == "3 of 3 online"
    assert found["option performance.strict-o-direct"]["fix"] == "gluster volume set ogrep3c performance.strict-o-direct on"
    assert found["owner"]["status"] == "warn" and found["quorum"]["status"] == "warn"

    dry = cli("prepare", "ogrep3c", "--owner", OWNER, "--dry-run")
    assert dry.returncode == 1 and "would change" in dry.stdout
    assert "gluster volume set ogrep3c " in dry.stdout
    assert findings("ogrep3c")[1] == found            # the dry run changed nothing

    done = cli("prepare", "ogrep3c", "--owner", OWNER)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cluster.server-quorum-type" in done.stdout and "ogrep3c: ok" in done.stdout
    values = gluster.effective_options("ogrep3c")
    assert values["performance.strict-o-direct"] == "on" and values["cluster.locking-scheme"] == "granular"
    assert values["features.shard"] == "off"          # sharding is never toggled by prepare
    assert (values["storage.owner-uid"], values["storage.owner-gid"]) == ("9869", "9869")
    st = os.stat(replica.mount_point)
    assert (st.st_uid, st.st_gid) == (9869, 9869)      # storage.owner-uid chowns the volume root
    code, found = findings("ogrep3c")
    assert code == 0 and found["option features.shard"]["status"] == "note"
    assert cli("prepare", "ogrep3c", "--owner", OWNER).stdout.startswith("ogrep3c: changing 0 option(s)")

    code, remote = findings("ogrep3c", "--host", HOST)   # through --remote-host: no `volume get`
    assert code == 0 and remote["options"]["status"] == "note"


def test_killed_bricks_then_stopped_volume(replica):
    bricks = gluster.brick_status("ogrep3c")
    try:
        os.kill(bricks[2].pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while all(b.online for b in gluster.brick_status("ogrep3c")) and time.monotonic() < deadline:
            time.sleep(0.2)
        code, found = findings("ogrep3c")
        assert code == 1
        assert found["bricks 1-3"]["status"] == "warn" and bricks[2].name in found["bricks 1-3"]["found"]
        assert found["bricks 1-3"]["fix"] == "gluster volume start ogrep3c force"

        os.kill(bricks[1].pid, signal.SIGKILL)
        while sum(b.online for b in gluster.brick_status("ogrep3c")) > 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        code, found = findings("ogrep3c")
        assert code == 2 and found["bricks 1-3"]["status"] == "fail"
        assert "unreachable" in found["bricks 1-3"]["found"]
    finally:
        replica.up()                                  # start force: bricks back

    gluster.stop_volume("ogrep3c")
    try:
        code, found = findings("ogrep3c")
        assert code == 2
        assert found["volume"] == {"status": "fail", "check": "volume", "found": "ogrep3c: stopped",
                                   "fix": "gluster volume start ogrep3c"}
        table = cli("check", "ogrep3c", "--owner", OWNER)
        assert table.returncode == 2 and "ogrep3c: failures" in table.stdout
    finally:
        replica.up()


def test_unknown_volume_fails(glusterd):
    done = cli("check", "ognosuch", "--owner", OWNER)
    assert done.returncode == 2 and "no volume 'ognosuch'" in done.stdout
    done = cli("prepare", "ognosuch")
    assert done.returncode == 2 and done.stderr.strip() == "one-gluster: No gluster volume 'ognosuch'"

"""`one-gluster mount` on the real lab volume (a subdirectory of it, so the owner change stays
there): mount with backup servers, image datastore links, fstab, a rerun, a dead mount recovered,
and the layouts it refuses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from one_gluster.admin import mounts
from support.labs import fuse_client
from support.system import wait_for

HOST = "127.0.1.1"


def cli(*args: str) -> tuple[int, dict[str, dict]]:
    done = subprocess.run([sys.executable, "-m", "one_gluster.admin.cli", "mount", *args, "--json"],
                          capture_output=True, text=True)
    assert not done.stderr, done.stderr
    return done.returncode, {item["check"]: item for item in json.loads(done.stdout)["items"]}


@pytest.fixture
def node(tmp_path, lab):
    """A node's DATASTORE_LOCATION and fstab; the volume's subdirectory `node-<n>` is its root."""
    sub = f"node-{tmp_path.name}"
    os.makedirs(os.path.join(lab.mount_point, sub))
    (tmp_path / "fstab").write_text("proc /proc proc defaults 0 0\n")
    yield tmp_path, f"ogtest/{sub}"
    for mount_point in (tmp_path / "datastores").glob("*"):
        mounts.unmount(str(mount_point))


def test_mount_links_owns_records_and_reruns(node):
    root, volume = node
    args = [volume, "--host", f"{HOST} 127.0.1.2", "--system", "300", "--images", "301", "302",
            "--datastores", str(root / "datastores"), "--fstab", str(root / "fstab"), "--owner", "9869:9869"]
    code, found = cli(*args, "--dry-run")
    assert code == 1 and not (root / "datastores").exists()
    code, found = cli(*args)
    assert code == 0, found
    system = root / "datastores" / "300"
    assert mounts.state(str(system)) == "mounted"
    assert "--volfile-server=127.0.1.1 --volfile-server=127.0.1.2" in fuse_client(system)[1]
    assert f"--volfile-id=/ogtest --subdir-mount=/{volume.partition('/')[2]} " in fuse_client(system)[1]
    assert os.readlink(root / "datastores" / "301") == "300" and os.readlink(root / "datastores" / "302") == "300"
    assert (system.stat().st_uid, system.stat().st_gid) == (9869, 9869)
    (system / "written-here").write_bytes(b"on the volume")
    assert (root / "datastores" / "301" / "written-here").read_bytes() == b"on the volume"
    fstab = (root / "fstab").read_text().splitlines()
    assert fstab == ["proc /proc proc defaults 0 0",
                     f"{HOST}:/{volume} {system} glusterfs defaults,_netdev,backup-volfile-servers=127.0.1.2 0 0"]

    code, again = cli(*args)
    assert code == 0 and "already mounted" in again[f"mount {system}"]["found"]
    assert again["fstab " + str(root / "fstab")]["found"] == "entry present"
    assert (root / "fstab").read_text().count("glusterfs") == 1

    os.kill(fuse_client(system)[0], signal.SIGKILL)
    assert wait_for(lambda: mounts.state(str(system)) == "dead", 10, poll=0.1)
    code, recovered = cli(*args)
    assert code == 0 and recovered[f"mount {system}"]["found"].startswith("dead mount")
    assert (system / "written-here").read_bytes() == b"on the volume"


def test_layouts_that_would_hide_or_split_data_are_refused(node):
    root, volume = node
    datastores = root / "datastores"
    (datastores / "310").mkdir(parents=True)
    (datastores / "310" / "local-file").write_bytes(b"x")
    code, found = cli(volume, "--host", HOST, "--system", "310", "--datastores", str(datastores), "--owner", "0:0")
    assert code == 2 and "holds files that the mount would hide" in found[f"mount {datastores}/310"]["found"]
    assert mounts.state(str(datastores / "310")) == "absent"

    (datastores / "321").mkdir()
    (datastores / "321" / "image").write_bytes(b"x")
    code, found = cli(volume, "--host", HOST, "--system", "320", "--images", "321", "--datastores", str(datastores),
                      "--owner", "0:0")
    assert code == 2 and found["image datastore 321"]["status"] == "fail"
    assert "core would not find its images" in found["image datastore 321"]["found"]

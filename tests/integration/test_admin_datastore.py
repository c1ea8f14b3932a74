"""`one-gluster datastore create`: the volume is checked for real (the lab volume), and the
datastores are created through pyone against onedsim.OnedApi, a loopback XML-RPC server standing
in for oned (no registry ships it) that records the `one.datastore.allocate` calls pyone makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import onedsim
from one_gluster.admin import registration

HOST = "127.0.1.1"


@pytest.fixture
def api(tmp_path):
    auth = tmp_path / "one_auth"
    auth.write_text("oneadmin:opennebula\n")
    with onedsim.OnedApi() as server:
        yield server, {**os.environ, "ONE_XMLRPC": server.endpoint, "ONE_AUTH": str(auth)}


def create(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "one_gluster.admin.cli", "datastore", "create", *args],
                          capture_output=True, text=True, env=env)


def test_creates_system_and_image_datastores_from_the_templates(api, lab):
    server, env = api
    done = create(env, "ogtest", "--host", f"{HOST}:24007 127.0.1.2", "--name", "gv", "--owner", "0:0")
    assert done.returncode == 1, done.stderr      # created, with the lab volume's warnings (no replica)
    assert "no replica" in done.stdout
    assert f"one-gluster mount ogtest --host '{HOST}:24007 127.0.1.2' --system 100 --images 101" in done.stdout
    calls = [args for name, args in server.calls if name == "one.datastore.allocate"]
    assert [cluster for _, cluster in calls] == [-1, -1]
    system, images = ({a.name: a.value.text for a in registration.parse(text) if a.value} for text, _ in calls)
    assert system == {"NAME": "gv_system", "TYPE": "SYSTEM_DS", "TM_MAD": "gluster",
                      "GLUSTER_HOST": f"{HOST}:24007 127.0.1.2", "GLUSTER_VOLUME": "ogtest"}
    assert images == {"NAME": "gv_images", "TYPE": "IMAGE_DS", "DS_MAD": "gluster", "TM_MAD": "gluster",
                      "DISK_TYPE": "GLUSTER", "GLUSTER_HOST": f"{HOST}:24007 127.0.1.2", "GLUSTER_VOLUME": "ogtest",
                      "CLONE_TARGET": "SYSTEM", "LN_TARGET": "NONE"}

    done = create(env, "ogtest", "--host", HOST, "--cluster", "3", "--json", "--owner", "0:0")
    out = json.loads(done.stdout)
    assert out["items"] == [{"id": 102, "name": "gluster_system", "type": "system"},
                            {"id": 103, "name": "gluster_images", "type": "images"}]
    assert [c for n, (_, c) in server.calls if n == "one.datastore.allocate"][-2:] == [3, 3]


def test_file_mode_datastores(api, lab):
    """--disk-type FILE: the image datastore's disks are files KVM opens through each host's FUSE mount;
    the system datastore is the same as for GLUSTER."""
    server, env = api
    done = create(env, "ogtest", "--host", HOST, "--name", "gf", "--disk-type", "file", "--no-check")
    assert done.returncode == 0, done.stderr
    (system, _), (images, _) = [args for name, args in server.calls if name == "one.datastore.allocate"]
    system, images = ({a.name: a.value.text for a in registration.parse(text) if a.value} for text in (system, images))
    assert system == {"NAME": "gf_system", "TYPE": "SYSTEM_DS", "TM_MAD": "gluster", "GLUSTER_HOST": HOST,
                      "GLUSTER_VOLUME": "ogtest"}
    assert images == {"NAME": "gf_images", "TYPE": "IMAGE_DS", "DS_MAD": "gluster", "TM_MAD": "gluster",
                      "DISK_TYPE": "FILE", "GLUSTER_HOST": HOST, "GLUSTER_VOLUME": "ogtest",
                      "CLONE_TARGET": "SYSTEM", "LN_TARGET": "NONE"}


def test_a_volume_that_fails_the_check_creates_nothing(api, glusterd):
    server, env = api
    done = create(env, "ognosuch", "--host", HOST)
    assert done.returncode == 2 and "nothing created" in done.stdout
    assert server.calls == []


def test_refused_credentials_are_one_line(api, lab, tmp_path):
    server, env = api
    (tmp_path / "one_auth").write_text("oneadmin:wrong\n")
    done = create(env, "ogtest", "--host", HOST, "--no-check")
    assert done.returncode == 2
    assert done.stderr.startswith(f"one-gluster: OpenNebula at {server.endpoint} refused to create a datastore")
    assert len(done.stderr.strip().splitlines()) == 1

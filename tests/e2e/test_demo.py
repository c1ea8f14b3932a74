"""The README's first command, minus apt-get: install.sh into a fresh self-contained prefix (a real
virtualenv with the package from this checkout), then `one-gluster demo` from that prefix, which
imports an image through the DS driver, deploys it through the TM and opens it through libgfapi."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from one_gluster.admin.lab import Lab

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.gfapi
def test_install_then_demo_then_uninstall(tmp_path, glusterd):
    prefix = tmp_path / "one"
    env = {**os.environ, "ONE_LOCATION": str(prefix)}
    installed = subprocess.run([str(REPO / "install.sh"), "--no-packages"], capture_output=True, text=True, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "imports one_gluster, pyone, lxml and sh" in installed.stdout
    command = prefix / "bin" / "one-gluster"
    clone = prefix / "var" / "remotes" / "tm" / "gluster" / "clone"
    shebang, path_line = clone.read_text().splitlines()[:2]
    assert shebang == f"#!{prefix}/lib/one-gluster/venv/bin/python3 -IS"
    assert f"['{prefix}/lib/one-gluster/venv/lib/python3." in path_line

    lab = tmp_path / "lab"
    system_ds = lab / "datastores" / "100"
    try:
        demo = subprocess.run([str(command), "demo", "--dir", str(lab)], capture_output=True, text=True, env=env)
        # The operator's next step: `one-gluster lab status|down`, which find the demo's mount (the
        # system datastore's directory, not the lab's default mount point).
        status = subprocess.run([str(command), "lab", "status", "--dir", str(lab), "--json"], capture_output=True,
                                text=True, env=env)
        down = subprocess.run([str(command), "lab", "down", "--dir", str(lab)], capture_output=True, text=True,
                              env=env)
    finally:
        Lab(root=str(lab), volume="onelab", mount_point=str(system_ds)).down()
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert str(system_ds) in json.loads(status.stdout)["mounted_at"]
    assert down.returncode == 0, down.stderr
    assert "mounted_at" in down.stdout and str(system_ds) not in down.stdout
    assert f" {system_ds} " not in Path("/proc/self/mounts").read_text()
    out = demo.stdout
    assert f"$ {prefix}/var/remotes/datastore/gluster/cp 0" in out
    assert f"$ {prefix}/var/remotes/tm/gluster/clone fe:{tmp_path}/lab/datastores//101/" in out
    assert '<source protocol="gluster" name="onelab/0/disk.0">' in out
    assert '<host name="127.0.1.1" port="24007" transport="tcp"/>' in out
    assert "image: gluster://127.0.1.1/onelab/0/disk.0\nfile format: qcow2" in out
    assert "backing file: ../" in out and "image: gluster://127.0.1.1/onelab/0/../" in out
    assert "stdout: TOTAL_MB=" in out

    removed = subprocess.run([str(REPO / "install.sh"), "--no-packages", "--uninstall"], capture_output=True,
                             text=True, env=env)
    assert removed.returncode == 0 and not command.exists() and not clone.exists()
    assert not (prefix / "lib" / "one-gluster" / "venv").exists()

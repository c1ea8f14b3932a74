"""A KVM host's side, on this machine: the host probe run as OpenNebula's monitor runs its probes, and
`one-gluster host check` and `host prepare`, with QEMU's gluster driver present and hidden (a private
mount namespace puts an empty directory over QEMU's module directory: QEMU then answers as one built
without the driver, "Unknown protocol")."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from one_gluster.admin import mounts
from support.labs import HOST

PROBE = "im/kvm-probes.d/host/system/one-gluster.sh"
MODULES = sorted(glob.glob("/usr/lib/*/qemu/block-gluster.so"))


def without_gluster_driver(argv: list[str], empty: Path) -> list[str]:
    """`argv` run where QEMU finds no gluster module."""
    if not MODULES or not shutil.which("unshare"):
        pytest.skip("no QEMU gluster module to hide, or no unshare")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode:
        pytest.skip(f"no private mount namespace here: {probe.stderr.decode().strip()}")
    empty.mkdir(exist_ok=True)
    hide = f"mount --bind {empty} {os.path.dirname(MODULES[0])} && exec \"$@\""
    return ["unshare", "-m", "sh", "-c", hide, "hide", *argv]


def attributes(out: str) -> dict[str, str]:
    """The probe's lines as oned reads them: KEY="VALUE", nothing else."""
    found = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        assert sep and key.isupper() and value.startswith('"') and value.endswith('"'), line
        found[key] = value[1:-1]
    return found


def qemu_version() -> str:
    out = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout
    return out.split("version ")[1].split()[0]


def test_the_probe_as_the_monitor_runs_it(remotes, lab, tmp_path):
    probe = remotes / PROBE
    assert os.access(probe, os.X_OK)
    done = subprocess.run([str(probe)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    found = attributes(done.stdout)
    assert found["GLUSTER_GFAPI"] == "YES" and found["GLUSTER_QEMU"] == qemu_version()
    assert f"{lab.volume}:{lab.mount_point}" in found["GLUSTER_MOUNTS"].split()

    hidden = subprocess.run(without_gluster_driver([str(probe)], tmp_path / "empty"), capture_output=True,
                            text=True, timeout=60)
    assert hidden.returncode == 0, hidden.stderr
    found = attributes(hidden.stdout)
    assert found["GLUSTER_GFAPI"] == "NO"
    assert f"{lab.volume}:{lab.mount_point}" in found["GLUSTER_MOUNTS"].split()


def host_check(*args: str, hide: Path | None = None) -> tuple[int, dict]:
    argv = [sys.executable, "-m", "one_gluster.admin.cli", "host", "check", *args, "--json"]
    done = subprocess.run(without_gluster_driver(argv, hide) if hide else argv, capture_output=True, text=True,
                          timeout=120)
    assert not done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def by_check(report: dict) -> dict[str, dict]:
    return {item["check"]: item for item in report["items"]}


def test_host_check_says_what_this_host_can_run(lab, tmp_path):
    datastores = str(Path(lab.mount_point).parent)
    code, report = host_check("--system", "100", "--datastores", datastores, "--owner", "0:0")
    found = by_check(report)
    assert report["disk_types"] == ["GLUSTER", "FILE"]
    assert code == (2 if found["libvirtd"]["status"] == "fail" else 1)        # 1: one volfile server
    assert found["qemu gluster driver"]["status"] == "ok" and found["qemu version"]["found"] == qemu_version()
    assert found[f"mount {lab.mount_point}"] == {"status": "ok", "check": f"mount {lab.mount_point}",
                                                 "found": f"{HOST}:/{lab.volume}, live", "fix": ""}
    assert found[f"mount {lab.mount_point} failover"]["status"] == "warn"
    assert found[f"glusterd {HOST}:24007"]["found"] == "reachable"
    assert [f for f in report["items"] if f["check"].startswith(f"brick {HOST}:{lab.bricks[0]}:")][0]["status"] == "ok"
    assert found["disk types"]["found"] == "GLUSTER and FILE"

    code, same = host_check("127.0.0.1", "--system", "100", "--datastores", datastores, "--owner", "0:0")
    assert same["disk_types"] == ["GLUSTER", "FILE"]       # a host named: this machine, without ssh

    code, hidden = host_check("--system", "100", "--datastores", datastores, "--owner", "0:0", hide=tmp_path / "e")
    found = by_check(hidden)
    assert hidden["disk_types"] == ["FILE"] and found["qemu gluster driver"]["status"] == "warn"
    assert "DISK_TYPE=FILE" in found["qemu gluster driver"]["fix"]
    assert "Unknown protocol" in found["qemu gluster driver"]["found"]

    code, none = host_check("--system", "999", "--datastores", datastores)
    assert code == 2 and none["disk_types"] == []
    assert by_check(none)["mount"]["found"] == f"no gluster volume is mounted at {datastores}/999"


def test_host_prepare_mounts_and_records_it(lab, tmp_path):
    sub = f"host-{tmp_path.name}"
    os.makedirs(os.path.join(lab.mount_point, sub))
    fstab = tmp_path / "fstab"
    fstab.write_text("proc /proc proc defaults 0 0\n")
    system = tmp_path / "datastores" / "400"
    args = ["host", "prepare", f"{lab.volume}/{sub}", "--host", f"{HOST} 127.0.1.2", "--system", "400", "--images",
            "401", "--datastores", str(tmp_path / "datastores"), "--fstab", str(fstab), "--owner", "0:0", "--json"]
    try:
        for _ in range(2):                                             # a rerun finds everything in place
            done = subprocess.run([sys.executable, "-m", "one_gluster.admin.cli", *args], capture_output=True,
                                  text=True)
            assert done.returncode == 0, done.stdout + done.stderr
        assert mounts.state(str(system)) == "mounted" and os.readlink(system.parent / "401") == "400"
        assert fstab.read_text().count("glusterfs") == 1
        assert "backup-volfile-servers=127.0.1.2" in fstab.read_text()
        code, report = host_check("--system", "400", "--datastores", str(tmp_path / "datastores"))
        assert by_check(report)[f"mount {system} failover"]["found"] == f"volfile servers {HOST}, 127.0.1.2"
    finally:
        mounts.unmount(str(system))

"""install.sh into a self-contained prefix (ONE_LOCATION) whose oned.conf and vmm_execrc are
written in OpenNebula's real layout (tests/fixtures/opennebula): registration, rerun, dry run,
uninstall. The drivers run with this interpreter (--python) and no Debian package is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from one_gluster.admin import registration as reg

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "opennebula"
PROBE = "var/remotes/im/kvm-probes.d/host/system/one-gluster.sh"
PROBE_SOURCE = "src/one_gluster/admin/host_probe.sh"


@pytest.fixture
def prefix(tmp_path) -> Path:
    (tmp_path / "etc" / "vmm_exec").mkdir(parents=True)
    shutil.copy(FIXTURES / "oned.conf", tmp_path / "etc" / "oned.conf")
    shutil.copy(FIXTURES / "vmm_execrc", tmp_path / "etc" / "vmm_exec" / "vmm_execrc")
    return tmp_path


def install(prefix: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(REPO / "install.sh"), "--no-packages", "--python", sys.executable, *args],
                          capture_output=True, text=True, env={**os.environ, "ONE_LOCATION": str(prefix)})
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_install_registers_and_a_rerun_changes_nothing(prefix):
    out = install(prefix).stdout
    conf = (prefix / "etc" / "oned.conf").read_text()
    parsed = reg.parse(conf)
    tm_args = reg.find(parsed, "TM_MAD")[0].attribute("ARGUMENTS")
    ds_args = reg.find(parsed, "DATASTORE_MAD")[0].attribute("ARGUMENTS")
    assert tm_args.endswith(",iscsi_libvirt,gluster")
    assert "-d dummy,fs,lvm,ceph,dev,iscsi_libvirt,restic,rsync,gluster -s " in ds_args
    assert ds_args.endswith(",qcow2,gluster")
    assert reg.find(parsed, "TM_MAD_CONF", "gluster") and reg.find(parsed, "DS_MAD_CONF", "gluster")
    assert "kvm-gluster" in (prefix / "etc" / "vmm_exec" / "vmm_execrc").read_text()
    backups = sorted((prefix / "etc").glob("oned.conf.one-gluster-*.bak"))
    assert len(backups) == 1 and backups[0].read_bytes() == (FIXTURES / "oned.conf").read_bytes()
    clone = prefix / "var" / "remotes" / "tm" / "gluster" / "clone"
    shebang, path_line = clone.read_text().splitlines()[:2]
    assert shebang == f"#!{sys.executable} -IS" and os.access(clone, os.X_OK)
    # without `site`, the driver carries the import path site gives this interpreter (here: editable)
    assert path_line.startswith("import sys; sys.path += [") and repr(str(REPO / "src")) in path_line
    assert (prefix / "var" / "remotes" / "datastore" / "gluster" / "cp").exists()
    assert (prefix / "share" / "one-gluster" / "opennebula" / "oned-gluster.conf").exists()
    probe = prefix / PROBE             # among OpenNebula's KVM host probes, which onehost sync pushes
    assert os.access(probe, os.X_OK) and probe.read_bytes() == (REPO / PROBE_SOURCE).read_bytes()
    assert "Left to do: restart oned" in out and "onehost sync --force" in out
    assert "ok      TM_MAD_CONF" in out           # the verification at the end

    before = snapshot(prefix)
    again = install(prefix).stdout
    assert snapshot(prefix) == before             # no new backup, no rewritten file
    assert "Done: nothing changed" in again and "oned.conf: unchanged" in again


def test_dry_run_shows_the_diff_and_changes_nothing(prefix):
    before = snapshot(prefix)
    out = install(prefix, "--dry-run").stdout
    assert snapshot(prefix) == before
    assert '+    ARGUMENTS = "-t 15 -d dummy,lvm,shared,fs_lvm,fs_lvm_ssh,qcow2,ssh,ceph,dev,iscsi_libvirt,gluster"' in out
    assert '+    NAME = "gluster", LN_TARGET = "NONE"' in out
    assert "kvm-gluster qemu-gluster" in out and "would install" in out and "nothing was changed" in out


def test_uninstall_restores_the_originals_byte_for_byte(prefix):
    install(prefix)
    out = install(prefix, "--uninstall").stdout
    assert (prefix / "etc" / "oned.conf").read_bytes() == (FIXTURES / "oned.conf").read_bytes()
    assert (prefix / "etc" / "vmm_exec" / "vmm_execrc").read_bytes() == (FIXTURES / "vmm_execrc").read_bytes()
    assert not (prefix / "var" / "remotes" / "tm" / "gluster").exists()
    assert not (prefix / "var" / "remotes" / "datastore" / "gluster").exists()
    assert not (prefix / "share" / "one-gluster").exists()
    assert not (prefix / PROBE).exists()
    assert "Debian packages stay installed" in out


def test_without_opennebula_the_registration_is_skipped(tmp_path):
    out = install(tmp_path).stdout
    assert f"No OpenNebula configuration at {tmp_path}/etc/oned.conf: registration skipped" in out
    assert (tmp_path / "var" / "remotes" / "tm" / "gluster" / "clone").exists()

"""The `.ssh` mixed mode: gluster images used from an ssh system datastore (a host's local disk).

The host here is this machine (127.0.0.1), so the driver copies without ssh; the system datastore
directory is a plain local directory, as on an ssh system datastore."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from support.drivers import deploy, gluster_disk, imported
from support.images import qemu_img, qemu_io, reads_pattern


@pytest.fixture(scope="module")
def image(ds, sources_dir):
    return imported(ds, sources_dir, "mixed", "qcow2")[0]


def test_ssh_system_datastore_round_trip(tm, ds, image, tmp_path, vm_ids):
    vmid = next(vm_ids)
    local = tmp_path / "datastores" / "0" / str(vmid)
    disk0, disk1 = local / "disk.0", local / "disk.1"
    deploy(tm, vmid, gluster_disk(0, image, "qcow2", size_mb=48, original_size_mb=32),
           gluster_disk(1, image, "qcow2", clone=False))
    tm.ok("clone.ssh", f"vm:{image}", f"127.0.0.1:{disk0}", vmid, 101)
    tm.ok("ln.ssh", f"vm:{image}", f"127.0.0.1:{disk1}", vmid, 101)
    assert json.loads(qemu_img("info", "--output=json", str(disk0)))["virtual-size"] == 48 << 20
    assert "backing-filename" not in qemu_img("info", "--output=json", str(disk0))   # standalone on the host
    assert qemu_img("compare", str(disk1), os.path.realpath(image)).startswith("Images are identical")
    assert "wrote" in qemu_io(str(disk1), "write -P 0x77 0 64k")
    tm.ok("resize.ssh", f"127.0.0.1:{disk0}", 64, vmid, 101)
    saved = f"{ds.base_path}/{'9a' * 16}"
    tm.ok("cpds.ssh", f"127.0.0.1:{disk1}", saved, -1, vmid, 101)
    tm.ok("mvds.ssh", f"127.0.0.1:{disk1}", image, vmid, 101)                 # written back to the image
    for written in (Path(os.path.realpath(image)), Path(saved)):
        assert reads_pattern(written, 0x77)
    tm.ok("delete.ssh", f"127.0.0.1:{disk0}", vmid, 101)
    tm.ok("delete.ssh", f"127.0.0.1:{disk1}", vmid, 101)
    assert os.listdir(local) == []
    # snapshots of host-local disks are not ours: the runner falls back to snap_create, which refuses
    refused = tm.call("snap_create", f"127.0.0.1:{disk1}", 0, vmid, 101)
    assert refused.returncode == 1 and "is not on a GlusterFS mount" in refused.plain_errors[-1]


def test_a_host_that_ssh_would_take_for_an_option_is_refused(tm, tmp_path, vm_ids):
    """oned's host name is ssh's destination argument: one that starts with '-' would be an ssh option
    (ProxyCommand runs a command here), so the driver refuses it before ssh runs."""
    vmid = next(vm_ids)
    witness = tmp_path / "ran"
    host = f"-oProxyCommand=touch {witness}"
    done = tm.call("delete.ssh", f"{host}:{tmp_path}/0/{vmid}/disk.0", vmid, 101)
    assert done.returncode == 1 and done.plain_errors == [f"{host!r} is not a host name"]
    assert not witness.exists()

"""TM snapshots of clones and persistent disks, qcow2 (internal snapshots) and raw (copies), and their
agreement with the DS driver's snap_* for the image of a persistent disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import onedsim
from support.drivers import deploy, gluster_disk, imported
from support.images import qemu_img, qemu_io, reads_pattern


@pytest.fixture(scope="module")
def sources(ds, sources_dir):
    return {fmt: imported(ds, sources_dir, f"snap-{fmt}", fmt)[0] for fmt in ("qcow2", "raw")}


def write(path: Path, fmt: str, byte: int) -> None:
    assert "wrote" in qemu_io(str(path), f"write -P {byte} 0 64k", fmt)


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_clone_snapshots_create_revert_delete(tm, sources, vm_ids, fmt):
    source = sources[fmt]
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, fmt), lcm_state=51)      # DISK_SNAPSHOT_POWEROFF
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    disk = tm.real(vmid, 0)
    write(disk, fmt, 0xAA)
    tm.ok("snap_create", tm.disk(vmid, 0), 0, vmid, 101)
    write(disk, fmt, 0xBB)
    tm.ok("snap_create", tm.disk(vmid, 0), 1, vmid, 101)
    write(disk, fmt, 0xCC)
    if fmt == "qcow2":
        names = [s["name"] for s in json.loads(qemu_img("info", "--output=json", str(disk)))["snapshots"]]
        assert names == ["one-snap-0", "one-snap-1"]
        assert disk.stat().st_size % 512 == 0
    else:
        assert sorted(os.listdir(f"{disk}.snap")) == ["0", "1"]
    tm.ok("snap_revert", tm.disk(vmid, 0), 0, vmid, 101)
    assert reads_pattern(disk, 0xAA, fmt=fmt)
    tm.ok("snap_revert", tm.disk(vmid, 0), 1, vmid, 101)
    assert reads_pattern(disk, 0xBB, fmt=fmt)
    tm.ok("snap_delete", tm.disk(vmid, 0), 0, vmid, 101)
    tm.ok("snap_delete", tm.disk(vmid, 0), 0, vmid, 101)                # already gone: fine
    missing = tm.call("snap_revert", tm.disk(vmid, 0), 0, vmid, 101)
    assert missing.returncode == 1 and "no snapshot 0" in missing.plain_errors[-1]
    assert disk.is_file() and not disk.is_symlink()                     # the active layer never moved
    saved = f"{os.path.dirname(source)}/{'cd' * 16}"
    tm.ok("cpds", tm.disk(vmid, 0), saved, 1, vmid, 101)                 # save-as of snapshot 1
    assert reads_pattern(saved, 0xBB, fmt=fmt)
    tm.ok("delete", tm.disk(vmid, 0), vmid, 101)
    assert not os.path.exists(f"{disk}.snap")


def test_persistent_disk_snapshots_live_in_the_image_as_the_ds_driver_keeps_them(tm, ds, sources, vm_ids):
    source = sources["qcow2"]
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "qcow2", clone=False), lcm_state=51)
    tm.ok("ln", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    image = Path(os.path.realpath(source))
    write(image, "qcow2", 0x11)
    tm.ok("snap_create", tm.disk(vmid, 0), 3, vmid, 101)
    write(image, "qcow2", 0x22)
    tm.ok("delete", tm.disk(vmid, 0), vmid, 101)                         # the VM is gone, the image stays
    # the snapshot is now an image snapshot: the DS driver reverts to it
    ds.ok("snap_revert", onedsim.image(0, source=source, fmt="qcow2", target_snapshot=3, snapshot_ids=[3]))
    assert reads_pattern(image, 0x11)
    ds.ok("snap_delete", onedsim.image(0, source=source, fmt="qcow2", target_snapshot=3, snapshot_ids=[3]))

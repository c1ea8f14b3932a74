"""Images and disks on a sharded volume, as gluster's option group for VM images makes one.

`sharded_lab` in conftest: files are cut into 64 MiB shards, `.shard/<gfid>.<n>` on the bricks for
every shard after the first, and holes cannot be seen through the mount (SEEK_DATA fails), so a copy
from the volume reads the holes as zeros. What an operator checks: the bytes, the space taken on the
bricks (no shard of holes or zeros holds data), and the space given back when an image is deleted.
The whole life of a VM on this volume, through libgfapi: the lifecycle test in tests/e2e. The TM
reads the VM from the loopback stand-in for oned's XML-RPC API (`oned` in conftest).
"""

from __future__ import annotations

import filecmp
import os
import time
from pathlib import Path

import pytest

from one_gluster import onedsim
from conftest import deploy, gfid, gluster_disk, make_raw, qemu_img, shard_owners

MiB = 1 << 20
SHARD = 64 * MiB


def data_shards(lab, path: Path) -> set[int]:
    """Which shards after the first hold bytes of the file at `path` on the bricks (gluster also makes
    empty ones, as it does for cp: the last, and those between)."""
    owner = gfid(lab, str(path))
    return {int(p.name.split(".")[1]) for brick in lab.bricks for p in Path(brick, ".shard").glob(f"{owner}.*")
            if p.stat().st_size}


def brick_space(lab, path: Path) -> int:
    """Bytes the file at `path` takes on the bricks: its first shard and the others."""
    owner = gfid(lab, str(path))
    relative = os.path.relpath(os.path.realpath(path), os.path.realpath(lab.mount_point))
    files = [Path(brick, relative) for brick in lab.bricks]
    files += [p for brick in lab.bricks for p in Path(brick, ".shard").glob(f"{owner}.*")]
    return sum(p.stat().st_blocks * 512 for p in files)


def assert_sparse_copy(lab, path: Path, original: Path) -> None:
    """`path` holds the bytes of `original` (4 shards' worth, 8 MiB of data in the first and the third)
    and takes no more space than that data."""
    assert filecmp.cmp(original, path, shallow=False)
    assert data_shards(lab, path) == {2}
    assert brick_space(lab, path) <= 1.1 * 8 * MiB


def two_shards_of_data(sources_dir: Path, name: str, zeros: bool = False) -> Path:
    data = {0: os.urandom(4 * MiB), 2 * SHARD + MiB: os.urandom(4 * MiB)}
    if zeros:
        data = {0: b"\0" * 4 * SHARD, **data}
    return make_raw(sources_dir / f"{name}.raw", 4 * SHARD, data)


@pytest.mark.parametrize("zeros", [False, True], ids=["holes", "zeros written out"])
def test_cp_writes_no_shard_of_holes_or_zeros(sharded_lab, sharded_ds, sources_dir, zeros):
    raw = two_shards_of_data(sources_dir, f"shards-{zeros}", zeros)
    source, fmt = sharded_ds.ok("cp", onedsim.image(0, path=str(raw))).split()
    assert fmt == "raw"
    assert_sparse_copy(sharded_lab, Path(source), raw)
    sharded_ds.ok("rm", onedsim.image(0, source=source))


def test_raw_disk_copies_from_the_volume_stay_sparse(sharded_lab, sharded_ds, sharded_tm, sources_dir, vm_ids):
    """TM clone of a raw image (a full copy) and save-as of the disk, both read through the mount."""
    raw = two_shards_of_data(sources_dir, "shards-tm")
    source = sharded_ds.ok("cp", onedsim.image(0, path=str(raw))).split()[0]
    tm, vmid = sharded_tm, next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "raw", size_mb=256, volume=tm.volume, datastore_id=tm.image_ds),
           lcm_state=27)                                                      # HOTPLUG_SAVEAS_POWEROFF
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, tm.image_ds)
    assert_sparse_copy(sharded_lab, tm.real(vmid, 0), raw)
    saved = Path(f"{sharded_ds.base_path}/{'5a' * 16}")
    tm.ok("cpds", tm.disk(vmid, 0), saved, -1, vmid, tm.image_ds)
    assert_sparse_copy(sharded_lab, saved, raw)
    tm.ok("delete", f"{tm.host}:{tm.location}{tm.system_ds}/{vmid}", vmid, tm.system_ds)
    for image in (source, saved):
        sharded_ds.ok("rm", onedsim.image(0, source=str(image)))


def test_cp_converts_into_a_qcow2_longer_than_a_shard(sharded_lab, sharded_ds, sources_dir):
    raw = make_raw(sources_dir / "shards-long.raw", 3 * SHARD, {MiB: os.urandom(SHARD + 8 * MiB)})
    source, fmt = sharded_ds.ok("cp", onedsim.image(0, path=str(raw)), ds_template={"DRIVER": "qcow2"}).split()
    assert fmt == "qcow2"
    assert data_shards(sharded_lab, Path(source)) == {1}
    assert "Images are identical" in qemu_img("compare", "-f", "raw", "-F", "qcow2", str(raw), source)
    sharded_ds.ok("rm", onedsim.image(0, source=source))


def test_rm_gives_the_shards_back(sharded_lab, sharded_ds, sources_dir):
    raw = make_raw(sources_dir / "shards-rm.raw", 2 * SHARD, {SHARD: os.urandom(MiB)})
    source = sharded_ds.ok("cp", onedsim.image(0, path=str(raw))).split()[0]
    owner = gfid(sharded_lab, source)
    assert owner in shard_owners(sharded_lab)
    sharded_ds.ok("rm", onedsim.image(0, source=source))
    assert not os.path.exists(source)
    deadline = time.monotonic() + 30                # gluster deletes shards in the background
    while owner in shard_owners(sharded_lab) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert owner not in shard_owners(sharded_lab)

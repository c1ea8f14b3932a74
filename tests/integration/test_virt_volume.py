"""Images and disks on a volume as operators run one for VM images: replica 3, sharded.

`virt_lab` in conftest (replica 3, `group virt`): files are cut into 64 MiB shards,
`.shard/<gfid>.<n>` on the bricks for every shard after the first, and holes cannot be seen through
the mount (SEEK_DATA fails), so a copy from the volume reads the holes as zeros. What an operator
checks: the bytes, the space taken on the bricks (no shard of holes or zeros holds data), the space
given back when an image is deleted; with one brick down, the drivers go on and the brick heals to
the same bytes; with two down, an import fails cleanly. The whole life of a VM on this volume,
through libgfapi: the lifecycle test in tests/e2e. The TM reads the VM from the loopback stand-in
for oned's XML-RPC API (`oned` in conftest).
"""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
from pathlib import Path

import pytest
from lxml import etree

import onedsim
from one_gluster.core import gluster
from support.drivers import Called, deploy, gluster_disk
from support.images import make_raw, qemu_img
from support.labs import brick_path, gfid, shard_owners
from support.system import wait_for

MiB = 1 << 20
SHARD = 64 * MiB


def data_shards(lab, path: Path) -> set[int]:
    """Which shards after the first hold bytes of the file at `path` on the bricks (gluster also makes
    empty ones, as it does for cp: the last, and those between)."""
    owner = gfid(lab, str(path))
    return {int(p.name.split(".")[1]) for brick in lab.bricks for p in Path(brick, ".shard").glob(f"{owner}.*")
            if p.stat().st_size}


def on_brick(lab, path: Path, brick: int = 0) -> list[Path]:
    """The files that hold the file at `path` on one brick (one replica): its first shard and the others."""
    owner = gfid(lab, str(path))
    return [brick_path(lab, path, brick), *sorted(Path(lab.bricks[brick], ".shard").glob(f"{owner}.*"))]


def brick_space(lab, path: Path) -> int:
    """Bytes the file at `path` takes on a brick."""
    return sum(p.stat().st_blocks * 512 for p in on_brick(lab, path))


def answers(path: Path) -> bool:
    """Whether `path` exists on a mount that answers (not ENOTCONN)."""
    try:
        return path.exists()
    except OSError:
        return False


def heal(volume: str) -> bool:
    """Whether gluster took `gluster volume heal VOL` (heal what the bricks list as pending)."""
    return subprocess.run(["gluster", "--mode=script", "volume", "heal", volume], capture_output=True).returncode == 0


def pending_heals(volume: str) -> int:
    """Entries `gluster volume heal VOL info` lists as still to heal, on all bricks."""
    done = subprocess.run(["gluster", "--mode=script", "volume", "heal", volume, "info", "--xml"],
                          capture_output=True, check=True)
    return sum(int(n) for n in etree.fromstring(done.stdout).xpath("//brick/numberOfEntries/text()"))


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
def test_cp_writes_no_shard_of_holes_or_zeros(virt_lab, virt_ds, sources_dir, zeros):
    raw = two_shards_of_data(sources_dir, f"shards-{zeros}", zeros)
    source, fmt = virt_ds.ok("cp", onedsim.image(0, path=str(raw))).split()
    assert fmt == "raw"
    assert_sparse_copy(virt_lab, Path(source), raw)
    virt_ds.ok("rm", onedsim.image(0, source=source))


def test_raw_disk_copies_from_the_volume_stay_sparse(virt_lab, virt_ds, virt_tm, sources_dir, vm_ids):
    """TM clone of a raw image (a full copy) and save-as of the disk, both read through the mount."""
    raw = two_shards_of_data(sources_dir, "shards-tm")
    source = virt_ds.ok("cp", onedsim.image(0, path=str(raw))).split()[0]
    tm, vmid = virt_tm, next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "raw", size_mb=256, volume=tm.volume, datastore_id=tm.image_ds),
           lcm_state=27)                                                      # HOTPLUG_SAVEAS_POWEROFF
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, tm.image_ds)
    assert_sparse_copy(virt_lab, tm.real(vmid, 0), raw)
    saved = Path(f"{virt_ds.base_path}/{'5a' * 16}")
    tm.ok("cpds", tm.disk(vmid, 0), saved, -1, vmid, tm.image_ds)
    assert_sparse_copy(virt_lab, saved, raw)
    tm.ok("delete", f"{tm.host}:{tm.location}{tm.system_ds}/{vmid}", vmid, tm.system_ds)
    for image in (source, saved):
        virt_ds.ok("rm", onedsim.image(0, source=str(image)))


def test_cp_converts_into_a_qcow2_longer_than_a_shard(virt_lab, virt_ds, sources_dir):
    raw = make_raw(sources_dir / "shards-long.raw", 3 * SHARD, {MiB: os.urandom(SHARD + 8 * MiB)})
    source, fmt = virt_ds.ok("cp", onedsim.image(0, path=str(raw)), ds_template={"DRIVER": "qcow2"}).split()
    assert fmt == "qcow2"
    assert data_shards(virt_lab, Path(source)) == {1}
    assert "Images are identical" in qemu_img("compare", "-f", "raw", "-F", "qcow2", str(raw), source)
    virt_ds.ok("rm", onedsim.image(0, source=source))


def test_rm_gives_the_shards_back(virt_lab, virt_ds, sources_dir):
    raw = make_raw(sources_dir / "shards-rm.raw", 2 * SHARD, {SHARD: os.urandom(MiB)})
    source = virt_ds.ok("cp", onedsim.image(0, path=str(raw))).split()[0]
    owner = gfid(virt_lab, source)
    assert owner in shard_owners(virt_lab)
    virt_ds.ok("rm", onedsim.image(0, source=source))
    assert not os.path.exists(source)
    assert wait_for(lambda: owner not in shard_owners(virt_lab), 30)     # gluster deletes them in the background


def test_with_a_brick_down_the_drivers_go_on_and_it_heals(virt_lab, virt_ds, virt_tm, sources_dir, vm_ids):
    """A server of three down for maintenance: 2 of 3 bricks keep quorum, imports and deploys go on."""
    down = gluster.brick_status(virt_lab.volume)[2]
    os.kill(down.pid, signal.SIGKILL)
    try:
        assert wait_for(lambda: not gluster.brick_status(virt_lab.volume)[2].online, 30)
        raw = two_shards_of_data(sources_dir, "degraded")
        source = Path(virt_ds.ok("cp", onedsim.image(0, path=str(raw))).split()[0])
        tm, vmid = virt_tm, next(vm_ids)
        deploy(tm, vmid, gluster_disk(0, str(source), "raw", size_mb=256, volume=tm.volume,
                                      datastore_id=tm.image_ds))
        tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, tm.image_ds)
        assert_sparse_copy(virt_lab, tm.real(vmid, 0), raw)
        assert not brick_path(virt_lab, source, 2).exists()              # the brick down has none of it
    finally:
        virt_lab.up()                                                    # the brick is started again
    assert wait_for(lambda: heal(virt_lab.volume), 30)                  # refused until the brick is connected
    assert wait_for(lambda: pending_heals(virt_lab.volume) == 0, 120)
    for path in (source, tm.real(vmid, 0)):
        healed, kept = on_brick(virt_lab, path, 2), on_brick(virt_lab, path, 0)
        assert [p.name for p in healed] == [p.name for p in kept]
        assert all(filecmp.cmp(a, b, shallow=False) for a, b in zip(healed, kept))
    tm.ok("delete", f"{tm.host}:{tm.location}{tm.system_ds}/{vmid}", vmid, tm.system_ds)
    virt_ds.ok("rm", onedsim.image(0, source=str(source)))


def test_quorum_lost_during_an_import(virt_lab, virt_ds, sources_dir, http_root):
    """Two bricks of three down while an image downloads: client quorum stops every write. The import
    fails with the volume's own error and why (the lost quorum), and names the staging file it could
    not remove; once the bricks
    are back, imports go on and leave that file alone until it is a day old (on a sharded volume a
    file's time cannot be set back, so test_ds_safety shows the day-old file removed)."""
    image = sources_dir / "quorum.raw"
    image.write_bytes(os.urandom(12 * MiB))
    payload = onedsim.request(virt_ds.node(LIMIT_TRANSFER_BW="4M"), onedsim.image(0, path=f"{http_root}/{image.name}"))
    importing = subprocess.Popen([str(virt_ds.remotes / "datastore/gluster/cp"), "0"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        importing.stdin.write(payload)
        importing.stdin.close()
        staged = wait_for(lambda: [p for p in Path(virt_lab.bricks[0]).glob(".*.part") if p.stat().st_size], 10)
        assert staged, "the download never started"
        for brick in gluster.brick_status(virt_lab.volume)[1:]:
            os.kill(brick.pid, signal.SIGKILL)
        out, err = importing.stdout.read(), importing.stderr.read()        # until it exits
        importing.wait()
    finally:
        virt_lab.up()
    result = Called(importing.returncode, out.decode(), err.decode())
    leftover = virt_ds.directory / staged[0].name
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.plain_errors) == 1 and "Transport endpoint is not connected" in result.plain_errors[0], err
    assert f"Gluster volume {virt_lab.volume} has lost quorum" in result.plain_errors[0], err     # and why
    assert f"ERROR: cp: Could not remove the staging file {leftover}" in result.stderr

    assert wait_for(lambda: answers(leftover), 30)                      # the mount reconnects to the bricks
    small = make_raw(sources_dir / "after-quorum.raw", MiB, {0: os.urandom(MiB)})
    source = virt_ds.ok("cp", onedsim.image(0, path=str(small))).split()[0]
    assert leftover.exists()          # written a minute ago, as by an action at work: kept (test_ds_safety: a day)
    leftover.unlink()
    virt_ds.ok("rm", onedsim.image(0, source=source))

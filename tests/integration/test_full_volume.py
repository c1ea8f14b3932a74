"""A volume that fills up during an import or a full-copy clone: one clear error, nothing left behind,
the space given back.

The volume's brick is a 40 MiB tmpfs, so that ENOSPC comes from the brick as it would on a full
disk (through O_DIRECT writes or the fsync before the rename, whichever meets it first). The TM
reads the VM from the loopback stand-in for oned's XML-RPC API (`oned` in conftest).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from pathlib import Path

import pytest

import onedsim
from one_gluster.admin import lab as labmod
from support.drivers import ImageDatastore
from support.images import make_raw
from support.labs import HOST

MiB = 1 << 20
FULL = "ogfull"


@pytest.fixture(scope="module")
def full_ds(tmp_path_factory, glusterd, remotes, sources_dir):
    root = tmp_path_factory.mktemp("full")
    bricks = root / "bricks"
    bricks.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(bricks)], check=True)
    volume = labmod.Lab(root=str(root), volume=FULL, host=HOST, mount_point=str(root / "datastores" / "100"))
    try:
        volume.up()
        template = {"GLUSTER_HOST": HOST, "GLUSTER_VOLUME": FULL, "SAFE_DIRS": f"{sources_dir}/"}
        yield ImageDatastore(remotes, volume.mount_point, template)
    finally:
        volume.down()
        subprocess.run(["umount", str(bricks)], check=True)


def used_mb(ds: ImageDatastore) -> int:
    return int(dict(line.split("=") for line in ds.ok("monitor", object_id=101).split())["USED_MB"])


def test_import_larger_than_the_free_space(full_ds, sources_dir):
    too_big = make_raw(sources_dir / "too-big.raw", 64 * MiB, {0: os.urandom(60 * MiB)})
    before = full_ds.entries()
    result = full_ds.call("cp", onedsim.image(0, path=str(too_big)))
    assert result.returncode != 0
    assert result.plain_errors == ["The datastore action cp failed: No space left on device"], result.stderr
    assert "Traceback" not in result.stderr
    assert full_ds.entries() == before                      # no partial image, no staging file

    # the staged copy fits, the conversion (qemu-img convert -t none) does not: staged and converted
    # image together are larger than the volume
    raw = make_raw(sources_dir / "half.raw", 32 * MiB, {0: os.urandom(24 * MiB)})
    half = sources_dir / "half.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(half)], check=True)
    result = full_ds.call("cp", onedsim.image(1, path=str(half)), object_id=1, ds_template={"DRIVER": "raw"})
    assert result.returncode != 0 and len(result.plain_errors) == 1, result.stderr
    assert result.plain_errors[0].startswith("Converting image into raw failed: qemu-img: ")
    assert result.plain_errors[0].endswith("No space left on device")
    assert full_ds.entries() == before

    # the space came back: the volume reports it, and an image that fits imports
    assert used_mb(full_ds) < 8
    fits = make_raw(sources_dir / "fits.raw", 32 * MiB, {0: os.urandom(8 * MiB)})
    source, fmt = full_ds.ok("cp", onedsim.image(2, path=str(fits)), object_id=2).split()
    assert fmt == "raw" and open(source, "rb").read() == fits.read_bytes()


def test_full_copy_clone_larger_than_the_free_space(full_ds, tm, vm_ids, sources_dir):
    full_tm = dataclasses.replace(tm, location=str(Path(full_ds.base_path).parent) + "/")
    raw = make_raw(sources_dir / "clone-me.raw", 32 * MiB, {0: os.urandom(22 * MiB)})
    source, _ = full_ds.ok("cp", onedsim.image(3, path=str(raw)), object_id=3).split()
    before = used_mb(full_ds)

    def clone(fmt: str, **disk) -> tuple[int, object]:
        vmid = next(vm_ids)
        full_tm.api.vms[vmid] = onedsim.vm(vmid, [onedsim.image_disk(
            0, image_id=3, source=source, fmt="raw", size_mb=32, volume=FULL, hosts=HOST, driver=fmt, extra=disk)])
        return vmid, full_tm.call("clone", f"vm:{source}", full_tm.disk(vmid, 0), vmid, 101)

    # a raw disk is a sparse copy of the image (sparse_copy.NewFile), 22 MiB that do not fit
    vmid, result = clone("raw")
    assert result.returncode != 0
    assert result.plain_errors == ["The transfer manager action clone failed: No space left on device"], result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(full_tm.real(vmid)) == []             # no disk.0, no staging file

    # a standalone qcow2 disk is converted by qemu-img, which meets the full volume itself
    vmid, result = clone("qcow2", QCOW2_STANDALONE="YES")
    assert result.returncode != 0 and len(result.plain_errors) == 1, result.stderr
    assert result.plain_errors[0].startswith("Converting image into qcow2 failed: qemu-img: ")
    assert result.plain_errors[0].endswith("No space left on device")
    assert os.listdir(full_tm.real(vmid)) == []

    # the space came back, and the overlay clone, which needs almost none, is made: once the brick has
    # looked again (gluster's posix layer refuses new files for up to 5 s after it found its disk full)
    assert used_mb(full_ds) == before
    vmid, result = clone("qcow2")
    deadline = time.monotonic() + 15
    while result.returncode != 0 and "No space left on device" in result.stderr and time.monotonic() < deadline:
        time.sleep(1)
        result = full_tm.call("clone", f"vm:{source}", full_tm.disk(vmid, 0), vmid, 101)
    assert result.returncode == 0, result.stderr
    assert os.listdir(full_tm.real(vmid)) == ["disk.0"]

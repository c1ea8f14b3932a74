"""A volume that fills up during an import: one clear error, nothing left behind, the space given back.

The volume's brick is a 40 MiB tmpfs, so that ENOSPC comes from the brick as it would on a full
disk (through O_DIRECT writes or the fsync before the rename, whichever meets it first).
"""

from __future__ import annotations

import os
import subprocess

import pytest

from one_gluster import lab as labmod, onedsim
from conftest import HOST, ImageDatastore, make_raw

MiB = 1 << 20


@pytest.fixture(scope="module")
def full_ds(tmp_path_factory, glusterd, remotes, sources_dir):
    root = tmp_path_factory.mktemp("full")
    bricks = root / "bricks"
    bricks.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(bricks)], check=True)
    volume = labmod.Lab(root=str(root), volume="ogfull", host=HOST, mount_point=str(root / "datastores" / "100"))
    try:
        volume.up()
        template = {"GLUSTER_HOST": HOST, "GLUSTER_VOLUME": "ogfull", "SAFE_DIRS": f"{sources_dir}/"}
        yield ImageDatastore(remotes, volume.mount_point, template)
    finally:
        volume.down()
        subprocess.run(["umount", str(bricks)], check=True)


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
    used = dict(line.split("=") for line in full_ds.ok("monitor", object_id=101).split())
    assert int(used["USED_MB"]) < 8, used
    fits = make_raw(sources_dir / "fits.raw", 32 * MiB, {0: os.urandom(8 * MiB)})
    source, fmt = full_ds.ok("cp", onedsim.image(2, path=str(fits)), object_id=2).split()
    assert fmt == "raw" and open(source, "rb").read() == fits.read_bytes()

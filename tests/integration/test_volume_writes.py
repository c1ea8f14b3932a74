"""Copies onto the volume: O_DIRECT for the aligned blocks, the unaligned rest buffered, with either
value of `performance.strict-o-direct` (off by default; on in the virt group that `prepare` applies).

With it off, write-behind accepts an unaligned O_DIRECT write and the brick refuses it only at the
fsync; with it on, the write itself fails. Either way a wrong split would fail here or corrupt bytes.
"""

from __future__ import annotations

import io
import os
import subprocess

import pytest

from one_gluster.core import gluster, qemu, sparse_copy
from one_gluster.core.staging import Staging
from support.images import make_raw
from support.labs import VOLUME

MiB = 1 << 20
# (offset, length) of the data written into each source file, and its size
SOURCES = {
    "one-byte": ([(0, 1)], 1),
    "under-a-block": ([(0, 4095)], 4095),
    "chunk-and-tail": ([(0, sparse_copy.CHUNK + 17)], sparse_copy.CHUNK + 17),
    "extents": ([(0, 70_000), (3 * MiB, MiB + 4097)], 9 * MiB + 123),
}


@pytest.fixture(params=["off", "on"])
def strict_o_direct(request, lab):
    gluster.set_option(VOLUME, "performance.strict-o-direct", request.param)
    yield request.param
    gluster.set_option(VOLUME, "performance.strict-o-direct", "off")


def test_copies_reach_the_bricks_intact(lab, strict_o_direct, tmp_path):
    mount, brick = lab.mount_point, lab.bricks[0]
    sparse_copy.takes_direct_io.cache_clear()
    assert sparse_copy.takes_direct_io(mount)
    with sparse_copy.NewFile(os.path.join(mount, f".probe-{strict_o_direct}")) as out:
        assert out.direct is not None                       # the FUSE mount takes O_DIRECT
    os.unlink(os.path.join(mount, f".probe-{strict_o_direct}"))
    for name, (extents, size) in SOURCES.items():
        src = make_raw(tmp_path / name, size, {offset: os.urandom(length) for offset, length in extents})
        final = f"copy-{strict_o_direct}-{name}"
        sparse_copy.copy_staged(str(src), os.path.join(mount, final))
        with open(os.path.join(brick, final), "rb") as f:
            assert f.read() == src.read_bytes(), name       # the brick holds the bytes, the tail too
        os.unlink(os.path.join(mount, final))

    # a stream (a download, an unpacked image): chunks as they come, the last one short
    data = os.urandom(2 * sparse_copy.CHUNK + 777)
    streamed = os.path.join(mount, f"stream-{strict_o_direct}")
    with Staging(streamed) as staging:
        temp = staging.temp()
        with sparse_copy.NewFile(temp) as out:
            assert sparse_copy.copy_stream(io.BytesIO(data), out) == len(data)
        staging.commit(temp)
    with open(os.path.join(brick, os.path.basename(streamed)), "rb") as f:
        assert f.read() == data
    os.unlink(streamed)

    # qemu-img convert -t none onto the volume, raw into qcow2 and back
    src = tmp_path / "extents"
    qcow2 = os.path.join(mount, f"conv-{strict_o_direct}.qcow2")
    raw = os.path.join(mount, f"conv-{strict_o_direct}.raw")
    qemu.convert(str(src), qcow2, "qcow2", src_fmt="raw")
    qemu.convert(qcow2, raw, "raw", src_fmt="qcow2")
    assert subprocess.run(["qemu-img", "compare", "-q", "-f", "raw", "-F", "raw", str(src), raw]).returncode == 0
    assert os.path.getsize(qcow2) % qemu.SECTOR == 0
    os.unlink(qcow2)
    os.unlink(raw)

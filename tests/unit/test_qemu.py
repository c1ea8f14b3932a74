"""Which qcow2 files a byte copy turns into a standalone disk (headers written by the real qemu-img), and
the 512-byte padding of every qcow2 the drivers write."""

from __future__ import annotations

import os

import pytest

from one_gluster.core import qemu
from support.images import qemu_img

MiB = 1 << 20


def make(path, *options: str) -> str:
    qemu_img("create", "-q", "-f", "qcow2", *options, str(path), str(16 * MiB))
    return str(path)


@pytest.mark.parametrize("options", [(), ("-o", "compat=0.10"), ("-o", "compression_type=zstd"),
                                     ("-o", "extended_l2=on"), ("-o", "lazy_refcounts=on")])
def test_plain_qcow2_is_self_contained(tmp_path, options):
    assert qemu.self_contained_qcow2(make(tmp_path / "a.qcow2", *options))


def test_qcow2_with_a_backing_file_is_not(tmp_path):
    base = make(tmp_path / "base.qcow2")
    assert not qemu.self_contained_qcow2(make(tmp_path / "top.qcow2", "-F", "qcow2", "-b", base))


def test_qcow2_with_an_internal_snapshot_is_not_until_it_is_deleted(tmp_path):
    image = make(tmp_path / "a.qcow2")
    qemu_img("snapshot", "-c", "one-snap-0", image)
    assert not qemu.self_contained_qcow2(image)
    qemu_img("snapshot", "-d", "one-snap-0", image)
    assert qemu.self_contained_qcow2(image)


def test_qcow2_with_a_dirty_bitmap_is_not(tmp_path):
    image = make(tmp_path / "a.qcow2")
    qemu_img("bitmap", "--add", image, "one-0-0")
    assert not qemu.self_contained_qcow2(image)


def test_qcow2_with_an_external_data_file_is_not(tmp_path):
    data = tmp_path / "a.data"
    assert not qemu.self_contained_qcow2(make(tmp_path / "a.qcow2", "-o", f"data_file={data}"))


@pytest.mark.parametrize("bit", [0, 1, 5])      # dirty, corrupt, a feature this check does not know
def test_qcow2_with_an_incompatible_feature_bit_is_not(tmp_path, bit):
    image = make(tmp_path / "a.qcow2")
    with open(image, "r+b") as f:
        f.seek(72)
        f.write((1 << bit).to_bytes(8, "big"))
    assert not qemu.self_contained_qcow2(image)


@pytest.mark.parametrize("content", [b"", b"QFI\xfb", bytes(4096), b"QFI\xfa" + bytes(4092)])
def test_other_files_are_not(tmp_path, content):
    path = tmp_path / "other"
    path.write_bytes(content)
    assert not qemu.self_contained_qcow2(str(path))


@pytest.mark.parametrize("size,padded", [(0, 0), (1, 512), (512, 512), (196616, 197120)])
def test_pad_to_sector(tmp_path, size, padded):
    path = tmp_path / "f"
    path.write_bytes(b"q" * size)
    qemu.pad_to_sector(str(path))
    assert os.path.getsize(path) == padded

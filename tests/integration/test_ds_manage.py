"""DS mkfs, clone, rm, monitor, snapshots and export against the real volume."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from lxml import etree

import onedsim
from support.images import make_raw, qemu_img, qemu_io, reads_pattern
from support.system import which

MiB = 1 << 20


def new_image(ds, sources_dir, name="base", fmt="qcow2") -> Path:
    """An image imported through cp: 32 MiB with a 0x11 pattern in its first MiB."""
    raw = make_raw(sources_dir / f"{name}.raw", 32 * MiB, {0: b"\x11" * MiB})
    path = raw
    if fmt == "qcow2":
        path = sources_dir / f"{name}.qcow2"
        qemu_img("convert", "-O", "qcow2", str(raw), str(path))
    return Path(ds.ok("cp", onedsim.image(0, path=str(path))).split()[0])


def info(path) -> dict:
    return json.loads(qemu_img("info", "-U", "--output=json", str(path)))


def magic_at(path: Path, fmt: str, offset: int, length: int) -> bytes:
    """Bytes of the guest-visible disk, whatever the container format."""
    if fmt == "qcow2":
        raw = path.with_name(f".check-{path.name}")
        qemu_img("convert", "-O", "raw", str(path), str(raw))
        try:
            return magic_at(raw, "raw", offset, length)
        finally:
            raw.unlink()
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_mkfs_empty(ds, fmt):
    source = Path(ds.ok("mkfs", onedsim.image(1, fmt=fmt, size_mb=64, state=4)).strip())
    data = info(source)
    assert data["format"] == fmt and data["virtual-size"] == 64 * MiB
    assert os.path.getsize(source) % 512 == 0


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_mkfs_ext4(ds, fmt):
    source = Path(ds.ok("mkfs", onedsim.image(1, fmt=fmt, fs="ext4", size_mb=64)).strip())
    assert info(source)["format"] == fmt
    assert magic_at(source, fmt, 1080, 2) == b"\x53\xef"      # ext superblock magic


def test_mkfs_swap(ds):
    source = Path(ds.ok("mkfs", onedsim.image(1, fmt="raw", fs="swap", size_mb=32)).strip())
    assert magic_at(source, "raw", 4086, 10) == b"SWAPSPACE2"


def test_mkfs_save_as_only_names(ds):
    before = ds.entries()
    source = ds.ok("mkfs", onedsim.image(1, fmt="save_as", size_mb=256)).strip()
    assert source.startswith(ds.base_path + "/") and not os.path.exists(source)
    assert ds.entries() == before


@pytest.mark.parametrize("kw,text", [
    ({"fmt": "vmdk", "size_mb": 8}, "Unknown image format"),
    ({"fmt": "raw", "size_mb": 8, "fs": "ntfs-3g"}, "Unsupported filesystem"),
    ({"fmt": "raw"}, "needs a SIZE"),
])
def test_mkfs_errors(ds, kw, text):
    before = ds.entries()
    result = ds.call("mkfs", onedsim.image(1, **kw))
    assert result.returncode != 0 and len(result.plain_errors) == 1 and text in result.plain_errors[0]
    assert ds.entries() == before


def test_clone_copies_without_snapshots(ds, sources_dir):
    original = new_image(ds, sources_dir, "toclone")
    qemu_img("snapshot", "-c", "one-snap-0", str(original))
    out = ds.ok("clone", onedsim.image(2, path=str(original)))
    copy, fmt = out.split()
    assert fmt == "qcow2" and copy != str(original)
    qemu_img("compare", str(original), copy)
    assert not info(copy).get("snapshots")
    assert os.path.getsize(copy) % 512 == 0


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_clone_is_a_sparse_copy(ds, sources_dir, fmt):
    original = new_image(ds, sources_dir, f"toclone-{fmt}", fmt=fmt)
    copy, got = ds.ok("clone", onedsim.image(2, path=str(original))).split()
    assert got == fmt and info(copy)["format"] == fmt and "backing-filename" not in info(copy)
    assert Path(copy).read_bytes() == original.read_bytes()
    assert os.stat(copy).st_blocks * 512 < 4 * MiB                        # 1 MiB of data, not 32


def test_clone_missing_source(ds):
    result = ds.call("clone", onedsim.image(2, path=ds.base_path + "/" + "0" * 32))
    assert result.returncode != 0 and "does not exist" in result.plain_errors[0]


def test_rm_removes_image_and_snapshots_and_is_idempotent(ds, sources_dir):
    source = new_image(ds, sources_dir, "torm", fmt="raw")
    snapdir = Path(f"{source}.snap")
    snapdir.mkdir()
    (snapdir / "0").write_bytes(b"x")
    request = onedsim.image(3, source=str(source), fmt="raw", state=7)
    assert ds.ok("rm", request) == ""
    assert not source.exists() and not snapdir.exists()
    again = ds.call("rm", request)
    assert again.returncode == 0 and "already gone" in again.stderr


def test_rm_refuses_outside_base_path(ds, lab, sources_dir):
    victim = Path(lab.mount_point) / "victim"          # on the volume, but in datastore 100's directory
    victim.mkdir(exist_ok=True)
    (victim / "keep").write_bytes(b"keep")
    for source in (str(victim / "keep"), f"{ds.base_path}/../100/victim/keep", str(sources_dir / "disk.raw")):
        result = ds.call("rm", onedsim.image(3, source=source, state=7))
        assert result.returncode != 0 and "not inside the datastore directory" in result.plain_errors[0]
    assert (victim / "keep").read_bytes() == b"keep"


def test_monitor_reports_the_volume_like_df(ds, lab):
    out = ds.ok("monitor", None, object_id=101)
    values = dict(line.split("=") for line in out.split())
    assert set(values) == {"USED_MB", "FREE_MB", "TOTAL_MB"}
    df = subprocess.run(["df", "-P", "-B1M", lab.mount_point], capture_output=True, text=True, check=True)
    total, used, free = (int(v) for v in df.stdout.splitlines()[1].split()[1:4])
    assert int(values["TOTAL_MB"]) == total
    assert abs(int(values["USED_MB"]) - used) <= 64 and abs(int(values["FREE_MB"]) - free) <= 64


def snap_request(source: Path, snap: int, fmt="qcow2", snaps=(0,)):
    return onedsim.image(4, source=str(source), fmt=fmt, target_snapshot=snap, snapshot_ids=snaps, state=1)


def test_qcow2_snapshots_revert_delete_flatten(ds, sources_dir):
    source = new_image(ds, sources_dir, "snaps")
    qemu_img("snapshot", "-c", "one-snap-0", str(source))          # as the TM takes it
    qemu_io(str(source), "write -P 0x22 0 1M")
    assert reads_pattern(source, 0x22, 0, "1M")

    ds.ok("snap_revert", snap_request(source, 0))
    assert reads_pattern(source, 0x11, 0, "1M")
    assert os.path.getsize(source) % 512 == 0

    qemu_io(str(source), "write -P 0x33 0 1M")
    qemu_img("snapshot", "-c", "one-snap-1", str(source))
    ds.ok("snap_delete", snap_request(source, 0, snaps=(0, 1)))
    assert [s["name"] for s in info(source)["snapshots"]] == ["one-snap-1"]
    again = ds.call("snap_delete", snap_request(source, 0, snaps=(1,)))
    assert again.returncode == 0 and "already gone" in again.stderr

    qemu_io(str(source), "write -P 0x44 0 1M")
    ds.ok("snap_flatten", snap_request(source, 1, snaps=(1,)))
    assert not info(source).get("snapshots")
    assert reads_pattern(source, 0x33, 0, "1M")
    assert os.path.getsize(source) % 512 == 0

    missing = ds.call("snap_revert", snap_request(source, 7))
    assert missing.returncode != 0 and missing.plain_errors == [f"Image {source} has no snapshot 7"]


def test_raw_snapshots_are_files_beside_source(ds, sources_dir):
    source = new_image(ds, sources_dir, "rawsnaps", fmt="raw")
    original = source.read_bytes()
    snapdir = Path(f"{source}.snap")
    snapdir.mkdir()
    (snapdir / "0").write_bytes(original)                              # as the TM copies it
    with open(source, "r+b") as f:
        f.write(b"\x55" * MiB)
    inode = os.stat(source).st_ino
    ds.ok("snap_revert", snap_request(source, 0, fmt="raw"))
    assert source.read_bytes() == original and os.stat(source).st_ino != inode
    assert (snapdir / "0").exists()
    ds.ok("snap_flatten", snap_request(source, 0, fmt="raw"))
    assert source.read_bytes() == original and not snapdir.exists()
    ds.ok("snap_delete", snap_request(source, 0, fmt="raw"))


def test_export_import_info(ds, sources_dir):
    source = new_image(ds, sources_dir, "export")
    out = ds.ok("export", onedsim.image(5, source=str(source), fmt="qcow2", state=1), object_id=12)
    info_node = etree.fromstring(out.encode())
    assert info_node.tag == "IMPORT_INFO"
    assert info_node.findtext("IMPORT_SOURCE") == str(source)
    assert info_node.findtext("MD5") == hashlib.md5(source.read_bytes()).hexdigest()
    assert info_node.findtext("SIZE") == "32" and info_node.findtext("FORMAT") == "qcow2"
    assert info_node.findtext("DISPOSE") == "NO"


@pytest.mark.skipif(not which("mkfs.xfs"), reason="xfsprogs not installed")
def test_mkfs_xfs(ds):
    source = Path(ds.ok("mkfs", onedsim.image(1, fmt="raw", fs="xfs", size_mb=320)).strip())
    assert magic_at(source, "raw", 0, 4) == b"XFSB"

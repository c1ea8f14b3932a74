"""Disk images on the FUSE mount: inspect, create, copy, convert, resize and snapshot them with `qemu-img`,
or without it where a plain byte copy or truncate does the same.

Every operation that writes qcow2 metadata ends by padding the file to a 512-byte multiple:
libgfapi fails any read that runs into the end of the file, so an unpadded qcow2 written
through FUSE would not open through `gluster://` (the 512-byte rule).
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from one_gluster.core import log, sparse_copy
from one_gluster.core.commands import run
from one_gluster.core.errors import DriverError

QEMU_IMG = "qemu-img"
# What `qemu-img` may detect in an image we accept; anything else is refused as unknown.
KNOWN_FORMATS = frozenset(
    {"raw", "qcow2", "qcow", "qed", "vmdk", "vdi", "vhdx", "vpc", "luks", "parallels", "dmg", "bochs", "cloop"}
)
TARGET_FORMATS = frozenset({"raw", "qcow2"})
QCOW2_MAGIC = b"QFI\xfb"
# qcow2 incompatible features a byte copy carries over as they are: compression type, extended L2 entries.
_COPYABLE_FEATURES = 1 << 3 | 1 << 4
_BITMAPS = 1 << 0                      # autoclear feature: the image holds persistent dirty bitmaps
SECTOR = 512


def info(path: str, fmt: Optional[str] = None) -> dict[str, Any]:
    """`qemu-img info` as a dict; `-U` so that an image in use by a VM can still be read."""
    args = ["info", "--output=json", "-U"]
    if fmt:
        args += ["-f", fmt]
    out = run(QEMU_IMG, *args, path, what=f"Reading image {path}")
    try:
        return json.loads(out)
    except ValueError:
        raise DriverError(f"qemu-img info gave unreadable output for {path}") from None


def inspect_untrusted(path: str) -> dict[str, Any]:
    """Info of an image to import: a known format, and no backing or external data file."""
    data = info(path)
    fmt = data.get("format", "")
    if fmt not in KNOWN_FORMATS:
        raise DriverError(f"Unknown image format {fmt!r} in {path}")
    if data.get("backing-filename") or data.get("full-backing-filename"):
        raise DriverError(
            f"Refusing image {path}: it depends on backing file {data.get('backing-filename')!r}; "
            "import a standalone image (qemu-img convert flattens it)"
        )
    specific = (data.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file"):
        raise DriverError(f"Refusing image {path}: it keeps its data in external file {specific['data-file']!r}")
    return data


def self_contained_qcow2(path: str) -> bool:
    """Whether a byte copy of `path` is a standalone qcow2 disk with the same content, read from the
    header (QEMU's docs/interop/qcow2.txt): no backing file, no external data file, not marked dirty or
    corrupt, and nothing that a new disk must not inherit and that `convert` leaves behind (internal
    snapshots, persistent dirty bitmaps). One read, no `qemu-img` run."""
    with open(path, "rb") as f:
        head = f.read(96)
    if len(head) < 96 or head[:4] != QCOW2_MAGIC:
        return False
    version, backing = int.from_bytes(head[4:8], "big"), int.from_bytes(head[8:16], "big")
    snapshots = int.from_bytes(head[60:64], "big")
    incompatible = autoclear = 0
    if version >= 3:
        incompatible, autoclear = int.from_bytes(head[72:80], "big"), int.from_bytes(head[88:96], "big")
    return (backing == 0 and snapshots == 0 and not incompatible & ~_COPYABLE_FEATURES
            and not autoclear & _BITMAPS)


def reported_format(fmt: str) -> str:
    """The FORMAT OpenNebula gets: LUKS containers are run as raw, as the fs driver reports them."""
    return "raw" if fmt == "luks" else fmt


def create(path: str, fmt: str, size_bytes: int) -> None:
    run(QEMU_IMG, "create", "-q", "-f", fmt, path, str(size_bytes), what=f"Creating {fmt} image")
    _finish(path, fmt)


def overlay(path: str, backing: str, backing_fmt: str, size_bytes: Optional[int] = None) -> None:
    """A new qcow2 file whose reads fall through to `backing`, a path relative to `path`'s directory:
    libgfapi and FUSE then resolve it to the same file of the volume."""
    args = ["create", "-q", "-f", "qcow2", "-F", backing_fmt, "-b", backing, path]
    if size_bytes:
        args.append(str(size_bytes))
    run(QEMU_IMG, *args, what="Creating the qcow2 overlay")
    _finish(path, "qcow2")


def resize(path: str, fmt: str, size_bytes: int) -> None:
    """Grow the disk at `path` to `size_bytes`, never shrink it. A raw file is only extended by a hole,
    which is all `qemu-img resize` would do, without starting it."""
    if fmt != "raw":
        run(QEMU_IMG, "resize", "-q", "-f", fmt, path, str(size_bytes), what=f"Resizing {path}")
        _finish(path, fmt)
        return
    current = os.stat(path).st_size
    if size_bytes < current:
        raise DriverError(f"Cannot shrink {path} from {current} to {size_bytes} bytes: disks only grow")
    os.truncate(path, size_bytes)


def convert(src: str, dst: str, out_fmt: str, src_fmt: Optional[str] = None,
            snapshot: Optional[str] = None, in_use: bool = False) -> None:
    """Copy `src` into a new `dst` of `out_fmt`; zeros become holes, internal snapshots are dropped.
    `in_use`: the source is open by a running VM (read it without taking its lock). `dst` is written
    with O_DIRECT where its filesystem takes it, as `sparse_copy.NewFile` writes copies."""
    args = ["convert", "-q", "-W", "-O", out_fmt]
    if sparse_copy.takes_direct_io(os.path.dirname(os.path.abspath(dst))):
        args += ["-t", "none"]
    if in_use:
        args.append("-U")
    if src_fmt:
        args += ["-f", src_fmt]
    if snapshot:
        args += ["-l", f"snapshot.name={snapshot}"]
    run(QEMU_IMG, *args, src, dst, what=f"Converting image into {out_fmt}")
    _finish(dst, out_fmt)


def standalone_copy(src: str, dst: str, out_fmt: str, src_fmt: str) -> None:
    """A new standalone image `dst` of `out_fmt` with the content of `src`: a sparse byte copy where that
    already is one (raw to raw, a self-contained qcow2), as fast as cp; otherwise `convert`, which
    flattens the image and leaves its internal snapshots and bitmaps behind."""
    if out_fmt == src_fmt == "raw" or (out_fmt == src_fmt == "qcow2" and self_contained_qcow2(src)):
        sparse_copy.copy_to_new(src, dst)
        _finish(dst, out_fmt)
    else:
        convert(src, dst, out_fmt, src_fmt=src_fmt)


def snapshot_names(path: str) -> list[str]:
    return [s.get("name", "") for s in info(path, "qcow2").get("snapshots", [])]


def snapshot(path: str, op: str, name: str) -> None:
    """`op` is -c (create), -a (apply) or -d (delete) of internal snapshot `name`.

    Applying one first removes the image's dirty bitmaps: QEMU refuses to revert an image that has
    them, and they could no longer tell what changed since their checkpoint. The disk's next
    incremental backup then fails until a new chain starts with a full one."""
    verb = {"-c": "Creating", "-a": "Reverting to", "-d": "Deleting"}[op]
    if op == "-a":
        for bitmap in bitmaps(path):
            log.info(f"Removing changed-block bitmap {bitmap} of {path}: its next backup must be a full one")
            remove_bitmap(path, bitmap)
    run(QEMU_IMG, "snapshot", "-q", op, name, path, what=f"{verb} snapshot {name}")
    _finish(path, "qcow2")


def detach(path: str) -> None:
    """Drop qcow2 image `path`'s backing file without touching its clusters (`rebase -u`): what it
    does not hold then reads as zeros, as an increment of a backup chain is kept."""
    run(QEMU_IMG, "rebase", "-q", "-u", "-b", "", "-f", "qcow2", path, what=f"Detaching {path} from its backing file")
    _finish(path, "qcow2")


def bitmaps(path: str) -> list[str]:
    """Names of the persistent dirty bitmaps (changed-block tracking) stored in qcow2 image `path`."""
    specific = (info(path, "qcow2").get("format-specific") or {}).get("data") or {}
    return [bitmap.get("name", "") for bitmap in specific.get("bitmaps", [])]


def add_bitmap(path: str, name: str) -> None:
    """Start tracking the clusters written to `path` from now on, in persistent bitmap `name`."""
    run(QEMU_IMG, "bitmap", "--add", "-f", "qcow2", path, name, what=f"Adding bitmap {name} to {path}")


def remove_bitmap(path: str, name: str) -> None:
    run(QEMU_IMG, "bitmap", "--remove", "-f", "qcow2", path, name, what=f"Removing bitmap {name} of {path}")


def _finish(path: str, fmt: str) -> None:
    if fmt == "qcow2":
        pad_to_sector(path)


def pad_to_sector(path: str) -> None:
    """Extend a file to the next multiple of 512 bytes (qcow2 ignores bytes past its last cluster):
    libgfapi cannot open a qcow2 written through FUSE whose size is not (the 512-byte rule)."""
    size = os.stat(path).st_size
    if size % SECTOR:
        os.truncate(path, size + SECTOR - size % SECTOR)

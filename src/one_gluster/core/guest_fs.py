"""New empty images, with a filesystem or swap made inside by the Debian mkfs tools."""

from __future__ import annotations

from one_gluster.core import qemu
from one_gluster.core.commands import run
from one_gluster.core.errors import DriverError
from one_gluster.core.staging import Staging

# FS name -> the command that formats a regular file with it, non-interactively.
MKFS: dict[str, tuple[str, ...]] = {
    "ext2": ("mkfs.ext2", "-F", "-q"),
    "ext3": ("mkfs.ext3", "-F", "-q"),
    "ext4": ("mkfs.ext4", "-F", "-q"),
    "xfs": ("mkfs.xfs", "-f", "-q"),
    "btrfs": ("mkfs.btrfs", "-f", "-q"),
    "vfat": ("mkfs.vfat",),
    "swap": ("mkswap",),
}


def check(fs: str) -> str:
    """Normalise a requested FS name, refusing the ones we cannot make."""
    name = fs.strip().lower()
    if name not in MKFS:
        raise DriverError(f"Unsupported filesystem {fs!r}: use one of {', '.join(sorted(MKFS))}")
    return name


def make(path: str, fs: str) -> None:
    """Format the raw image file at `path` with `fs` (already checked)."""
    program, *args = MKFS[fs]
    run(program, *args, path, what=f"Making a {fs} filesystem")


def make_image(staging: Staging, fmt: str, size_bytes: int, fs: str) -> str:
    """Create a raw or qcow2 image in a staging file, formatted with `fs` if given; return its path."""
    temp = staging.temp()
    if not fs:
        qemu.create(temp, fmt, size_bytes)
        return temp
    qemu.create(temp, "raw", size_bytes)
    make(temp, fs)
    if fmt == "raw":
        return temp
    converted = staging.temp()
    qemu.convert(temp, converted, "qcow2", src_fmt="raw")
    return converted

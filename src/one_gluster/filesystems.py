"""Filesystems and swap made inside new images with the Debian mkfs tools."""

from __future__ import annotations

from .commands import run
from .errors import DriverError

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

"""Images made and read as a user would check them: qemu-img, qemu-io, extents, bitmaps, restores."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import onedsim

MiB = 1 << 20


def qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True).stdout


def qemu_io(path: str, command: str, fmt: str = "qcow2", user: Optional[int] = None) -> str:
    """`qemu-io -c command` on the image at `path`, as uid and gid `user` where given (QEMU's user)."""
    done = subprocess.run(["qemu-io", "-f", fmt, "-c", command, path], capture_output=True, text=True,
                          **onedsim.as_user(user))
    return done.stdout + done.stderr


def reads_pattern(path, byte: object, offset: object = 0, length: object = "64k", fmt: str = "qcow2",
                  user: Optional[int] = None) -> bool:
    """Whether the guest reads byte `byte` over `length` bytes at `offset` of the image at `path`
    (`qemu-io read -P`, as uid and gid `user` where given); an image that cannot be read fails the test."""
    out = qemu_io(str(path), f"read -P {byte} {offset} {length}", fmt, user)
    assert "bytes at offset" in out, out
    return "Pattern verification failed" not in out


def held_extents(path: Path) -> list[tuple[int, int]]:
    """(start, length) of each extent the image itself holds, not its backing file (qemu-img map)."""
    return [(e["start"], e["length"]) for e in json.loads(qemu_img("map", "--output=json", str(path)))
            if e["present"] and e["depth"] == 0]


def bitmaps(path: Path) -> list[str]:
    """The names of the persistent dirty bitmaps a qcow2 image holds."""
    info = json.loads(qemu_img("info", "--output=json", "-U", str(path)))
    return sorted(b["name"] for b in info["format-specific"]["data"].get("bitmaps", []))


def restored(archive: Path, work: Path, disk_id: int, last: int) -> Path:
    """The disk as a restore rebuilds it from the backup files kept in `archive`: each increment
    rebased onto the one before, down to the full backup."""
    work.mkdir()
    for n in range(last + 1):
        shutil.copy(archive / f"disk.{disk_id}.{n}", work)
        if n:
            qemu_img("rebase", "-u", "-F", "qcow2", "-b", f"disk.{disk_id}.{n - 1}", str(work / f"disk.{disk_id}.{n}"))
    return work / f"disk.{disk_id}.{last}"


def make_raw(path: Path, size: int, data: dict[int, bytes]) -> Path:
    """A sparse raw image of `size` bytes holding `data` at the given offsets."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, chunk in data.items():
            f.seek(offset)
            f.write(chunk)
    return path


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def gfapi_differences(pairs: list[tuple[str, Path, str]], user: Optional[int] = None) -> list[str]:
    """Open each `gluster://` URI through libgfapi and compare it with the FUSE path, as `fmt`: what KVM
    reads against what the drivers wrote, as uid and gid `user` where given (QEMU's user). ~10 s per
    open here (glfs_fini), so all run side by side. Returns one line per pair that differs (empty: all
    identical)."""
    def compare(pair: tuple[str, Path, str]) -> subprocess.CompletedProcess:
        uri, path, fmt = pair
        return subprocess.run(["qemu-img", "compare", "-U", "-f", fmt, "-F", fmt, uri, str(path)],
                              capture_output=True, text=True, **onedsim.as_user(user))

    with ThreadPoolExecutor(len(pairs)) as pool:
        results = list(pool.map(compare, pairs))
    return [f"{uri} vs {path}: {done.stdout.strip()} {done.stderr.strip()[-300:]}"
            for (uri, path, _), done in zip(pairs, results)
            if done.returncode != 0 or "Images are identical" not in done.stdout]

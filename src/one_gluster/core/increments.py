"""Incremental backups of a powered-off qcow2 disk: the clusters written since a checkpoint (a persistent
dirty bitmap in the image), copied into a new qcow2 that holds only them and has no backing file, as
OpenNebula's backup datastores keep an increment (`disk.<id>.<n>`, rebased onto `disk.<id>.<n-1>` when
restored). Only qemu-utils tools take part:

1. `qemu-nbd` serves the disk read-only with the bitmap, on a unix socket in a private directory;
2. `qemu-img map` reads the bitmap through QEMU's NBD client (`x-dirty-bitmap`, which reports a dirty
   extent as one without data);
3. the increment is created over the NBD export as its backing file, and `qemu-io` reads every dirty
   extent with copy-on-read, which writes exactly those clusters into it;
4. its backing file is then dropped (`rebase -u`): what it does not hold is what did not change.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Callable, Iterator

from one_gluster.core import qemu
from one_gluster.core.commands import background, run
from one_gluster.core.errors import DriverError

READ_BYTES = 64 << 20              # one qemu-io read at most: its buffer is this large
SERVER_WAIT_SECONDS = 30.0


def checkpoint_name(vmid: int, increment: int) -> str:
    """The bitmap (and libvirt checkpoint) that counts changes from backup `increment` of VM `vmid`,
    named as OpenNebula's own drivers name it."""
    return f"one-{vmid}-{increment}"


def is_checkpoint_of(name: str, vmid: int) -> bool:
    prefix = f"one-{vmid}-"
    return name.startswith(prefix) and name[len(prefix):].isdigit()


def broken_chain(disk: str, parent: str) -> DriverError:
    """The refusal of an increment whose parent checkpoint `disk` (as messages name it) no longer has."""
    return DriverError(f"{disk} no longer tracks changes since checkpoint {parent} (a snapshot was reverted, or "
                       "the disk replaced): start a new backup chain with onevm backup --reset")


def restart_tracking(disk: str, vmid: int, keep: str, new: str) -> None:
    """After a backup: VM `vmid`'s bitmaps on `disk` are `keep` (the parent, for a retry of this
    increment; none when empty) and a new one, `new`, from now on."""
    for name in qemu.bitmaps(disk):
        if is_checkpoint_of(name, vmid) and name != keep:
            qemu.remove_bitmap(disk, name)
    qemu.add_bitmap(disk, new)


def copy_changes(disk: str, bitmap: str, dst: str) -> None:
    """Write into new file `dst` a qcow2 increment of qcow2 image `disk`: what changed since `bitmap`."""
    with tempfile.TemporaryDirectory(prefix="one-gluster-nbd-") as private:
        socket = os.path.join(private, "disk.sock")
        server = ("qemu-nbd", "--read-only", "--persistent", "--format=qcow2", f"--bitmap={bitmap}",
                  f"--socket={socket}", disk)
        with background(*server, what=f"Serving {disk} over NBD") as alive:
            _wait_for(socket, alive, disk)
            extents = _dirty_extents(socket, bitmap)
            run(qemu.QEMU_IMG, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", f"nbd+unix:///?socket={socket}",
                dst, what="Creating the increment")
            script = "".join(f"read -q {offset} {length}\n" for offset, length in _reads(extents))
            run("qemu-io", "-C", "-f", "qcow2", dst, stdin=script.encode(),
                what=f"Copying the changes of {disk} since {bitmap}")
    qemu.detach(dst)


def _wait_for(socket: str, alive: Callable[[], bool], disk: str) -> None:
    deadline = time.monotonic() + SERVER_WAIT_SECONDS
    while not os.path.exists(socket):
        if not alive():
            raise DriverError(f"qemu-nbd could not serve {disk}")
        if time.monotonic() > deadline:
            raise DriverError(f"qemu-nbd did not start serving {disk} in {SERVER_WAIT_SECONDS:.0f} s")
        time.sleep(0.01)


def _dirty_extents(socket: str, bitmap: str) -> list[tuple[int, int]]:
    """(offset, length) of each dirty extent of the served disk, adjacent ones merged."""
    options = ",".join(("driver=nbd", "server.type=unix", f"server.path={socket.replace(',', ',,')}",
                        f"x-dirty-bitmap=qemu:dirty-bitmap:{bitmap.replace(',', ',,')}"))
    out = run(qemu.QEMU_IMG, "map", "--output=json", "--image-opts", options, what=f"Reading bitmap {bitmap}")
    try:
        entries = json.loads(out)
    except ValueError:
        raise DriverError(f"qemu-img map gave unreadable output for bitmap {bitmap}") from None
    extents: list[tuple[int, int]] = []
    for entry in entries:
        if entry.get("data"):                       # x-dirty-bitmap: clean extents are reported as data
            continue
        offset, length = entry["start"], entry["length"]
        if extents and sum(extents[-1]) == offset:
            offset, length = extents[-1][0], extents.pop()[1] + length
        extents.append((offset, length))
    return extents


def _reads(extents: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    for offset, length in extents:
        for pos in range(offset, offset + length, READ_BYTES):
            yield pos, min(READ_BYTES, offset + length - pos)

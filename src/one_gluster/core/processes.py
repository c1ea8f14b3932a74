"""Processes as /proc shows them: who is alive, the gluster daemons of this machine and which FUSE
client serves a mount point, and the children a driver leaves when it is stopped."""

from __future__ import annotations

import os
import signal
import time
from typing import Callable, Optional

from one_gluster.core.errors import DriverError


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name: state, parent pid, ... ([] when gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return []


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (killed gluster daemons linger as zombies)."""
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def stop_children(timeout: float = 3.0) -> None:
    """KILL this process's children and wait up to `timeout` s until none runs. A signal sent to the
    process group misses a child forked just after it, which would go on writing after the driver
    stopped."""
    me = str(os.getpid())
    children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _stat(int(p))[1:2] == [me]]
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.01)


def _cmdline(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def pids_named(name: str) -> list[int]:
    """The live processes whose command is `name`."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == name and alive(int(entry)):
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def is_fuse_client(pid: int) -> bool:
    """A glusterfs process that serves a FUSE mount (not a brick, daemon or glusterd)."""
    args = _cmdline(pid)
    return b"--process-name" in args and b"fuse" in args


def fuse_client_of(mount_point: str) -> Optional[int]:
    """The live glusterfs FUSE client that serves `mount_point` (its last argument), if any."""
    wanted = os.path.realpath(mount_point)
    for pid in pids_named("glusterfs"):
        args = [a for a in _cmdline(pid) if a]
        if args and is_fuse_client(pid) and os.path.realpath(os.fsdecode(args[-1])) == wanted:
            return pid
    return None


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll `predicate` every 0.2 s until it holds, or fail after `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise DriverError(f"Timed out waiting for {what}")
        time.sleep(0.2)

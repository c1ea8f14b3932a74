"""The lab: a real gluster volume on loopback addresses, started and stopped by the project itself.

It is the embedded default for trying the drivers (`one-gluster lab up`) and what the tests run
against: glusterd, bricks under one directory, and the volume's FUSE mount. Every step is
idempotent, so `up` also repairs a half-started lab (stopped volume, dead mount, dead glusterd).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from dataclasses import dataclass
from typing import Optional

from one_gluster.admin import mounts
from one_gluster.core import gluster
from one_gluster.core.commands import run
from one_gluster.core.errors import DriverError
from one_gluster.core.processes import alive, is_fuse_client, pids_named, wait_until

GLUSTERD_PIDFILE = "/var/run/glusterd.pid"
BRICK_PIDFILES = "/var/run/gluster/vols"
DEFAULT_ROOT = "/var/lib/one-gluster/lab"
DEFAULT_HOST = "127.0.1.1"


def glusterd_pid() -> Optional[int]:
    try:
        with open(GLUSTERD_PIDFILE) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def _cli_answers() -> bool:
    try:
        gluster.volume_names()
        return True
    except DriverError:
        return False


def start_glusterd() -> bool:
    """Start glusterd unless it runs; wait until its CLI answers. Return whether it was started."""
    if glusterd_pid() is not None and _cli_answers():
        return False
    run("glusterd", "-p", GLUSTERD_PIDFILE, what="Starting glusterd")
    wait_until(_cli_answers, "glusterd to answer")
    return True


def stop_glusterd() -> None:
    """Stop glusterd and every gluster daemon it spawned (bricks, self-heal)."""
    pid = glusterd_pid()
    if pid is not None:
        os.kill(pid, 15)
        wait_until(lambda: not alive(pid), "glusterd to stop")
    for name in ("glusterfsd", "glusterfs"):
        for other in pids_named(name):
            if not is_fuse_client(other):
                os.kill(other, 15)


# The client-side caches that the `virt` option group turns off: QEMU writes through libgfapi while
# the drivers read through FUSE, and these caches would show the FUSE side stale image metadata.
COHERENT_CACHES = {"performance.quick-read": "off", "performance.read-ahead": "off", "performance.io-cache": "off"}


@dataclass
class Lab:
    """One lab volume: bricks under `root/bricks/<volume>`, mounted at `mount_point`."""

    root: str = DEFAULT_ROOT
    volume: str = "onelab"
    host: str = DEFAULT_HOST
    replica: int = 1
    mount_point: str = ""

    def __post_init__(self) -> None:
        if not ipaddress.ip_address(self.host).is_loopback or self.host == "127.0.0.1":
            raise DriverError(f"The lab runs on loopback only, and gluster refuses 127.0.0.1: {self.host!r}")
        self.root = os.path.abspath(self.root)
        self.mount_point = os.path.abspath(self.mount_point or os.path.join(self.root, "mnt", self.volume))

    @property
    def bricks(self) -> list[str]:
        return [os.path.join(self.root, "bricks", self.volume, f"b{i}") for i in range(self.replica)]

    @property
    def source(self) -> str:
        return f"{self.host}:/{self.volume}"

    def up(self) -> None:
        """Bring glusterd, the volume and its mount up, whatever state they are in."""
        start_glusterd()
        info = gluster.volume_info(self.volume)
        wanted = [f"{self.host}:{b}" for b in self.bricks]
        if info is not None and [b.name for b in info.bricks] != wanted:
            self._delete_volume(info.started)
            info = None
        if info is None:
            for brick in self.bricks:
                shutil.rmtree(brick, ignore_errors=True)
                os.makedirs(brick)
            gluster.create_volume(self.volume, wanted, self.replica)
            for option, value in COHERENT_CACHES.items():
                gluster.set_option(self.volume, option, value)
            gluster.start_volume(self.volume)
        elif not info.started or not all(b.online for b in gluster.brick_status(self.volume)):
            self._forget_dead_bricks()
            gluster.start_volume(self.volume, force=True)
        wait_until(lambda: all(b.online for b in gluster.brick_status(self.volume)), "the bricks to come online")
        self.mount()

    def _forget_dead_bricks(self) -> None:
        """Remove the pidfiles of killed bricks: while a killed brick lingers as a zombie, glusterd
        takes its pidfile for a running brick and `start force` would not restart it."""
        pidfiles = os.path.join(BRICK_PIDFILES, self.volume)
        for name in os.listdir(pidfiles) if os.path.isdir(pidfiles) else ():
            try:
                with open(os.path.join(pidfiles, name)) as f:
                    pid = int(f.read().strip() or 0)
            except (OSError, ValueError):
                continue
            if name.endswith(".pid") and not alive(pid):
                os.unlink(os.path.join(pidfiles, name))

    def mount(self) -> None:
        mounts.mount(self.source, self.mount_point)

    def mount_state(self) -> str:
        return mounts.state(self.mount_point)

    def down(self) -> None:
        """Unmount the volume wherever it is mounted (the demo mounts it as its system datastore, not
        at `mount_point`), stop and delete it, and remove its bricks (glusterd keeps running)."""
        for mount_point in dict.fromkeys([self.mount_point, *mounts.mount_points_of(self.source)]):
            mounts.unmount(mount_point)
        if glusterd_pid() is not None:
            info = gluster.volume_info(self.volume)
            if info is not None:
                self._delete_volume(info.started)
        shutil.rmtree(os.path.join(self.root, "bricks", self.volume), ignore_errors=True)

    def _delete_volume(self, started: bool) -> None:
        if started:
            gluster.stop_volume(self.volume)
        gluster.delete_volume(self.volume)

    def status(self) -> dict[str, object]:
        info = gluster.volume_info(self.volume) if glusterd_pid() is not None else None
        return {
            "glusterd": glusterd_pid() is not None,
            "volume": self.volume,
            "state": info.status if info else "absent",
            "type": info.type if info else "",
            "bricks": [b.name for b in info.bricks] if info else [],
            "mount_point": self.mount_point,
            "mount": self.mount_state(),
            "mounted_at": mounts.mount_points_of(self.source),
        }

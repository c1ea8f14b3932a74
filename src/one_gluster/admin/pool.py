"""The pool lab: a trusted pool of gluster servers on one machine, for trying and testing failover.

One glusterd per server, each on its own loopback address (127.1.1.1, .2, .3) with its own working
directory, socket, pid file and log, as gluster's own regression suite runs clusters
(`tests/cluster.rc`); peer-probed into one pool; a replica volume with one brick per server, mounted
with the other servers as backup volfile servers. A server is lost by killing its glusterd and its
bricks (`lose`), and comes back by starting them again (`restore`).

The default glusterd (the single-server lab's, or a real one) listens on 0.0.0.0:24007, which these
servers' own port 24007 cannot share: asked to (`stop_glusterd`), the pool stops it while it runs
(its bricks and mounts go on serving), and `down` starts it again; else `up` refuses, saying so.
"""

from __future__ import annotations

import os
import shutil
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

from one_gluster.admin import mounts
from one_gluster.admin.lab import COHERENT_CACHES, glusterd_pid, start_glusterd
from one_gluster.core import gluster, gluster_xml
from one_gluster.core.commands import run
from one_gluster.core.errors import DriverError
from one_gluster.core.processes import alive, is_fuse_client, pids_named, wait_until

DEFAULT_POOL_ROOT = "/var/lib/one-gluster/pool"
ADDRESSES = ("127.1.1.1", "127.1.1.2", "127.1.1.3")


@dataclass
class Server:
    """One gluster server of the pool: its glusterd, on its own address, with its own state."""

    address: str
    root: str                               # everything of this server lives here

    @property
    def workdir(self) -> str:
        return os.path.join(self.root, "glusterd")

    @property
    def socket(self) -> str:
        return os.path.join(self.workdir, "gd.sock")

    @property
    def pidfile(self) -> str:
        return os.path.join(self.root, "glusterd.pid")

    def pid(self) -> Optional[int]:
        try:
            with open(self.pidfile) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def cli(self, *args: str):
        """The gluster CLI of this server (its glusterd's socket)."""
        return gluster.cli(*args, socket=self.socket)

    def answers(self) -> bool:
        try:
            self.cli("volume", "list")
            return True
        except DriverError:
            return False

    def start(self) -> None:
        if self.pid() is not None and self.answers():
            return
        os.makedirs(self.workdir, exist_ok=True)
        run("glusterd", "--xlator-option", f"management.working-directory={self.workdir}",
            "--xlator-option", f"management.transport.socket.bind-address={self.address}",
            "--xlator-option", f"management.glusterd-sockfile={self.socket}",
            f"--pid-file={self.pidfile}", f"--log-file={os.path.join(self.root, 'glusterd.log')}",
            what=f"Starting glusterd on {self.address}")
        wait_until(self.answers, f"glusterd on {self.address} to answer")

    def processes(self) -> list[int]:
        """This server's glusterd, bricks and daemons: every gluster process started for its address
        (not the FUSE clients, which name the servers they ask too)."""
        found = []
        for name in ("glusterd", "glusterfsd", "glusterfs"):
            for pid in pids_named(name):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        args = f.read().replace(b"\0", b" ")
                except OSError:
                    continue
                if self.address.encode() in args and not is_fuse_client(pid):
                    found.append(pid)
        return found

    def lose(self) -> None:
        """The server dies: its glusterd and bricks are killed at once."""
        for pid in self.processes():
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not self.processes(), f"the processes of {self.address} to die")
        for dirpath, _dirs, names in os.walk(os.path.join(self.workdir, "vols")):
            for name in names:
                if name.endswith(".pid"):
                    os.unlink(os.path.join(dirpath, name))


@dataclass
class Pool:
    """A replica volume over the pool's servers, mounted at `mount_point`."""

    root: str = DEFAULT_POOL_ROOT
    volume: str = "onepool"
    servers: int = 3
    virt: bool = False
    mount_point: str = ""
    stop_glusterd: bool = False             # may `up` stop the default glusterd for the port?
    members: list[Server] = field(init=False)

    def __post_init__(self) -> None:
        if not 2 <= self.servers <= len(ADDRESSES):
            raise DriverError(f"A pool lab has 2 or 3 servers, not {self.servers}")
        self.root = os.path.abspath(self.root)
        self.mount_point = os.path.abspath(self.mount_point or os.path.join(self.root, "mnt", self.volume))
        self.members = [Server(a, os.path.join(self.root, "servers", a)) for a in ADDRESSES[:self.servers]]

    @property
    def first(self) -> Server:
        return self.members[0]

    @property
    def bricks(self) -> list[str]:
        return [os.path.join(self.root, "bricks", self.volume, server.address) for server in self.members]

    @property
    def hosts(self) -> str:
        """GLUSTER_HOST for this pool: every server, the first serving."""
        return " ".join(server.address for server in self.members)

    @property
    def source(self) -> str:
        return f"{self.first.address}:/{self.volume}"

    @property
    def mount_options(self) -> list[str]:
        return ["backup-volfile-servers=" + ":".join(s.address for s in self.members[1:])]

    def up(self) -> None:
        """The servers, the pool, the volume and its mount, whatever state they are in."""
        default = glusterd_pid()
        if default is not None and not self.first.pid():
            if not self.stop_glusterd:
                raise DriverError(f"glusterd (pid {default}) listens on 0.0.0.0:24007, the port the pool's servers "
                                  "need on 127.1.1.1-3: stop it first (its bricks and mounts go on serving), or "
                                  "give --stop-glusterd, and `lab down --servers N` starts it again")
            os.kill(default, signal.SIGTERM)
            wait_until(lambda: not alive(default), "the default glusterd to stop")
        with ThreadPoolExecutor(len(self.members)) as workers:     # each glusterd takes ~2 s to start
            list(workers.map(Server.start, self.members))
        for server in self.members[1:]:
            self.first.cli("peer", "probe", server.address)
        wait_until(self._peers_connected, "the servers to join the pool", timeout=60)
        info = self._info()
        if info is None:
            for brick in self.bricks:
                shutil.rmtree(brick, ignore_errors=True)
                os.makedirs(brick)
            bricks = [f"{s.address}:{b}" for s, b in zip(self.members, self.bricks)]
            self.first.cli("volume", "create", self.volume, "replica", str(self.servers), *bricks, "force")
            options = {**COHERENT_CACHES, **({"group": "virt"} if self.virt else {})}
            for option, value in options.items():
                self.first.cli("volume", "set", self.volume, option, value)
            self.first.cli("volume", "start", self.volume)
        elif not info.started or not all(b.online for b in self.brick_status()):
            self.first.cli("volume", "start", self.volume, "force")
        wait_until(lambda: all(b.online for b in self.brick_status()), "the bricks to come online", timeout=60)
        mounts.mount(self.source, self.mount_point, self.mount_options)

    def _info(self) -> Optional[gluster_xml.VolumeInfo]:
        if self.volume not in gluster_xml.volume_names(self.first.cli("volume", "list")):
            return None
        return gluster_xml.volume_info(self.first.cli("volume", "info", self.volume), self.volume)

    def peers(self, server: Optional[Server] = None) -> dict[str, bool]:
        """The other servers as `server` (the first) sees them, and whether each is connected."""
        return gluster_xml.peers((server or self.first).cli("peer", "status"))

    def _peers_connected(self) -> bool:
        peers = self.peers()
        return all(peers.get(s.address) for s in self.members[1:])

    def brick_status(self, server: Optional[Server] = None) -> list[gluster_xml.Brick]:
        return gluster_xml.brick_status((server or self.first).cli("volume", "status", self.volume))

    def heal_pending(self) -> int:
        """Entries waiting for self-heal, as the bricks' own index of them holds (what `heal info` reads;
        its helper asks the default glusterd, which the pool stops)."""
        count = 0
        for brick in self.bricks:
            for index in ("xattrop", "dirty"):
                folder = os.path.join(brick, ".glusterfs", "indices", index)
                names = os.listdir(folder) if os.path.isdir(folder) else []
                count += sum(1 for name in names if not name.startswith(f"{index}-"))
        return count

    def restore(self, *servers: Server) -> None:
        """Lost servers come back: their glusterd start, and start their bricks (a glusterd that finds no
        peer up starts none: servers all lost come back together)."""
        with ThreadPoolExecutor(len(servers)) as workers:
            list(workers.map(Server.start, servers))
        for server in servers:
            wait_until(lambda: all(b.online for b in self.brick_status(server) if b.host == server.address),
                       f"the bricks of {server.address}", 60)

    def down(self) -> None:
        """Unmount, delete the volume, stop every server, remove the pool's state; the default glusterd
        is started again."""
        for mount_point in dict.fromkeys([self.mount_point, *mounts.mount_points_of(self.source)]):
            mounts.unmount(mount_point)
        if self.first.pid() is not None and self._info() is not None:
            self.first.cli("volume", "stop", self.volume, "force")
            self.first.cli("volume", "delete", self.volume)
        for server in self.members:          # nothing of theirs is kept: no need to let them wind down
            server.lose()
        shutil.rmtree(self.root, ignore_errors=True)
        start_glusterd()

    def status(self) -> dict[str, object]:
        up = [s for s in self.members if s.pid() is not None]
        info = self._info() if self.first in up else None
        return {
            "servers": {s.address: "up" if s in up else "down" for s in self.members},
            "peers": ({a: "connected" if c else "disconnected" for a, c in self.peers().items()}
                      if self.first in up else {}),
            "volume": self.volume,
            "state": info.status if info else "absent",
            "bricks": {b.name: "online" if b.online else "offline"
                       for b in (self.brick_status() if info and info.started else [])},
            "mount_point": self.mount_point,
            "mount": mounts.state(self.mount_point),
            "gluster_host": self.hosts,
        }

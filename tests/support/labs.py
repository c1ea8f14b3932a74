"""The test volumes: their names and addresses, the drivers installed for them, and what their
bricks hold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from one_gluster.admin import lab as labmod

REPO = Path(__file__).resolve().parents[2]


HOST = "127.0.1.1"


VOLUME = "ogtest"


VIRT = "ogvirt"


OWNED = "ogowned"


ONEADMIN = 9869          # oneadmin's uid and gid in OpenNebula's packages: who runs the drivers on a front-end


def install_drivers(root: Path) -> Path:
    """The drivers installed by install.sh into the remotes tree `root`, running with this interpreter (a
    self-contained ONE_LOCATION, so that nothing lands in the machine's /usr/share or /etc/one)."""
    subprocess.run([str(REPO / "install.sh"), "--no-packages", "--python", sys.executable, "--remotes", str(root)],
                   check=True, capture_output=True, env={**os.environ, "ONE_LOCATION": str(root / "one")})
    return root


@contextmanager
def datastore_volume(root: Path, volume: str, system_ds: int, replica: int = 1) -> Iterator[labmod.Lab]:
    """A lab volume with its bricks under `root`, FUSE-mounted as system datastore `system_ds` in
    `root/datastores`, the image datastore (the next id) a symlink to it; torn down after, also when
    bringing it up fails."""
    datastores = root / "datastores"
    lab = labmod.Lab(root=str(root), volume=volume, host=HOST, replica=replica,
                     mount_point=str(datastores / str(system_ds)))
    try:
        lab.up()
        (datastores / str(system_ds + 1)).symlink_to(str(system_ds))
        yield lab
    finally:
        lab.down()


def shard_owners(lab: labmod.Lab) -> set[str]:
    """The gfids of the files that have shards on `lab`'s bricks (`.shard/<gfid>.<n>`: each file's
    blocks after its first 64 MiB)."""
    return {p.name.split(".")[0] for brick in lab.bricks for p in Path(brick, ".shard").glob("*-*.*")}


def volume_path(lab: labmod.Lab, path) -> str:
    """The name of the file at `path` on `lab`'s mount inside the volume (relative to its root)."""
    return os.path.relpath(os.path.realpath(path), os.path.realpath(lab.mount_point))


def brick_path(lab: labmod.Lab, path, brick: int = 0) -> Path:
    """Where the file at `path` on `lab`'s mount lies on one of its bricks (its first shard, where the
    volume is sharded): the volume's own bytes, which no client caches."""
    return Path(lab.bricks[brick], volume_path(lab, path))


def gfid(lab: labmod.Lab, path: str) -> str:
    """The gfid of the file at `path` on `lab`'s mount, as its brick records it."""
    return str(uuid.UUID(bytes=os.getxattr(brick_path(lab, path), "trusted.gfid")))


# The test volumes an end-to-end test runs on: (lab, image datastore, TM, where sources go) by fixture name.
SITES = {"plain": ("lab", "ds", "tm", "sources_dir"),
         "replica-3-virt": ("virt_lab", "virt_ds", "virt_tm", "sources_dir"),
         "as-oneadmin": ("owned_lab", "owned_ds", "owned_tm", "owned_home")}


def fuse_client(mount_point: Path) -> tuple[int, str]:
    """The pid and command line of the FUSE client that serves `mount_point`."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args[0].endswith(b"glusterfs") and str(mount_point).encode() in args:
            return int(pid), " ".join(a.decode() for a in args)
    raise AssertionError(f"no glusterfs client for {mount_point}")


def unstick(lab: labmod.Lab) -> str:
    """Abort the FUSE connection of `lab`'s mount, whose requests do not return: each fails with ENOTCONN,
    waking the processes waiting on it in uninterruptible sleep (the mount is dead after). First the
    client and the bricks are asked for a statedump (their pending calls, in /var/run/gluster), for a
    bug report. Returns where the dumps are, the client's last warnings and what gluster says of the
    bricks, for the failure report."""
    parent, name = os.path.split(os.path.abspath(lab.mount_point))
    mount_point = os.path.join(os.path.realpath(parent), name)      # not a stat of the mount: it hangs
    device = next(line.split()[2] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                  if line.split()[4] == mount_point)
    dumps, before = Path("/var/run/gluster"), set(Path("/var/run/gluster").glob("*.dump.*"))
    try:
        client = fuse_client(Path(lab.mount_point))[0]
        os.kill(client, signal.SIGUSR1)
        time.sleep(2)                                               # the client writes its dump
    except AssertionError:                                          # no client: nothing to dump
        client = None
    connections = Path("/sys/fs/fuse/connections")
    if not any(connections.iterdir()):
        subprocess.run(["mount", "-t", "fusectl", "fusectl", str(connections)], check=False)
    (connections / device.split(":")[1] / "abort").write_text("1")
    log = Path("/var/log/glusterfs", mount_point.strip("/").replace("/", "-") + ".log")
    warnings = [line for line in log.read_text(errors="replace").splitlines() if "] W [" in line or "] E [" in line
                or "] C [" in line]
    try:
        subprocess.run(["gluster", "--mode=script", "volume", "statedump", lab.volume], capture_output=True,
                       timeout=120)
        bricks = subprocess.run(["gluster", "volume", "status", lab.volume], capture_output=True, text=True,
                                timeout=120).stdout
    except subprocess.TimeoutExpired:
        bricks = "gluster volume statedump or status: no answer within 120 s"
    new_dumps = sorted(str(p) for p in set(dumps.glob("*.dump.*")) - before)
    return "\n".join([f"FUSE connection {device} of {mount_point} (client pid {client}) aborted",
                      f"statedumps: {' '.join(new_dumps) or 'none written'}", *warnings[-20:], bricks])

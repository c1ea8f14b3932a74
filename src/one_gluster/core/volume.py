"""A gluster volume as the drivers see it: its servers, its name, and the FUSE mount that serves it.

The mount guard lives here: before any write, `require_mount` proves that a path lies on a live
`fuse.glusterfs` mount of the expected volume, so nothing ever lands on a bare local directory.
And `refresh`: before the drivers work on an image or disk that a VM's QEMU may have just written
through libgfapi, the mount is made to show it as the bricks hold it.
"""

from __future__ import annotations

import os
import re
import stat
from typing import NamedTuple, Optional

from one_gluster.core.errors import DriverError, RequestError
from one_gluster.core.template import Template

DEFAULT_PORT = 24007
FUSE_TYPE = "fuse.glusterfs"
_VOLUME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


class Server(NamedTuple):
    """One entry of GLUSTER_HOST: `name[:port]`, `[v6addr][:port]`."""

    host: str
    port: Optional[int] = None

    @classmethod
    def parse(cls, text: str) -> "Server":
        text = text.strip()
        if text.startswith("["):
            end = text.find("]")
            if end < 0:
                raise RequestError(f"Malformed GLUSTER_HOST entry {text!r}")
            host, rest = text[1:end], text[end + 1:]
            port_text = rest[1:] if rest.startswith(":") else rest
            if rest and not rest.startswith(":"):
                raise RequestError(f"Malformed GLUSTER_HOST entry {text!r}")
        elif text.count(":") == 1:
            host, port_text = text.split(":")
        else:
            host, port_text = text, ""
        if not host:
            raise RequestError(f"Malformed GLUSTER_HOST entry {text!r}")
        if not port_text:
            return cls(host)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise RequestError(f"Malformed port in GLUSTER_HOST entry {text!r}")
        return cls(host, int(port_text))

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORT


def parse_servers(value: str) -> tuple[Server, ...]:
    """GLUSTER_HOST is split on spaces, as OpenNebula core does: the first serves, the rest fail over."""
    return tuple(Server.parse(item) for item in value.split())


class Volume(NamedTuple):
    """GLUSTER_VOLUME (`name` or `name/subdir`) and GLUSTER_HOST of a datastore or disk."""

    name: str
    subdir: str
    servers: tuple[Server, ...]

    @classmethod
    def from_template(cls, template: Template) -> "Volume":
        value = template.get("GLUSTER_VOLUME").strip("/")
        if not value:
            raise RequestError("GLUSTER_VOLUME is not set in the datastore template")
        name, _, subdir = value.partition("/")
        if not name or not _VOLUME_CHARS.issuperset(name) or ".." in subdir.split("/"):
            raise RequestError(f"GLUSTER_VOLUME {value!r} is not a valid gluster volume name")
        return cls(name, subdir.strip("/"), parse_servers(template.get("GLUSTER_HOST")))


class Mount(NamedTuple):
    """One line of /proc/self/mountinfo."""

    mount_point: str
    fstype: str
    source: str

    @property
    def volume_path(self) -> str:
        """For a gluster mount `host:/vol/sub`, the path it exposes: `vol/sub`."""
        return self.source.partition(":")[2].strip("/")

    @property
    def volume_name(self) -> str:
        return self.volume_path.partition("/")[0]


def _unescape(field: str) -> str:
    if "\\" not in field:
        return field
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def read_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[Mount]:
    mounts = []
    with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rest = left.split(), right.split()
            if len(fields) >= 5 and len(rest) >= 2:
                mounts.append(Mount(_unescape(fields[4]), rest[0], _unescape(rest[1])))
    return mounts


def mount_of(path: str, mounts: Optional[list[Mount]] = None) -> Mount:
    """The mount that holds `path` (already resolved): the longest mount point above it, last wins."""
    best: Optional[Mount] = None
    for mount in mounts if mounts is not None else read_mounts():
        mp = mount.mount_point
        if path == mp or path.startswith(mp.rstrip("/") + "/"):
            if best is None or len(mp) >= len(best.mount_point):
                best = mount
    if best is None:
        raise DriverError(f"No mount holds {path}")
    return best


class MountedPath(NamedTuple):
    """A resolved path proven to be on a live gluster mount of the expected volume."""

    path: str
    mount: Mount
    fs: os.statvfs_result          # the statvfs of the mount that proved it alive

    @property
    def volume_path(self) -> str:
        """The same place named inside the volume, as libgfapi names it (`vol/dir/file`)."""
        rel = os.path.relpath(self.path, self.mount.mount_point)
        return self.mount.volume_path if rel == "." else f"{self.mount.volume_path}/{rel}"

    def usage(self) -> str:
        """USED_MB, FREE_MB and TOTAL_MB of the volume as `df -B1M` gives them: one statvfs."""
        st = self.fs
        mb = lambda blocks: -(-blocks * st.f_frsize // (1 << 20))   # rounded up, as df does
        return f"USED_MB={mb(st.f_blocks - st.f_bfree)}\nFREE_MB={mb(st.f_bavail)}\nTOTAL_MB={mb(st.f_blocks)}"


def require_mount(path: str, volume: Volume) -> MountedPath:
    """Prove that `path` is on a live FUSE mount of `volume`, or refuse with what to fix."""
    mounted = require_some_mount(path, volume.name)
    if mounted.mount.volume_name != volume.name:
        raise DriverError(
            f"{path} is on a mount of gluster volume {mounted.mount.volume_name!r} ({mounted.mount.source}), "
            f"not of GLUSTER_VOLUME {volume.name!r}"
        )
    return mounted


def require_some_mount(path: str, expected: str = "") -> MountedPath:
    """Prove that `path` is on a live FUSE mount of a gluster volume (for paths no volume is named for,
    such as a system datastore's VM directories)."""
    real = os.path.realpath(path)
    mount = mount_of(real)
    if mount.fstype != FUSE_TYPE:
        raise DriverError(
            f"{path} is not on a GlusterFS mount (it is on {mount.mount_point}, type {mount.fstype}): "
            f"mount {'gluster volume ' + expected if expected else 'the gluster volume'} there first"
        )
    return MountedPath(real, mount, probe(mount))


class Unserved(DriverError):
    """A gluster mount that does not serve; `state` says why: 'dead' (its FUSE client is gone),
    'unreachable' (no brick answers it) or 'no quorum' (too few bricks answer for its replicas)."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


LOOKUP_PROBE = ".one-gluster-lookup"      # a name looked up on the mount and never made


def probe(mount: Mount) -> os.statvfs_result:
    """Prove that gluster `mount` serves: its statvfs (answered by any brick), then a lookup of a name
    that is not there (never cached: gluster's FUSE mounts keep no negative entries), which a replica
    that lost client quorum refuses with ENOTCONN. Else raise Unserved, saying what is wrong and what
    to do. A mount whose volfile server died serves on while its bricks answer, and passes."""
    try:
        fs = os.statvfs(mount.mount_point)
    except OSError as exc:
        raise _unserved(mount, exc, statfs_answered=False) from None
    try:
        os.lstat(os.path.join(mount.mount_point, LOOKUP_PROBE))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _unserved(mount, exc, statfs_answered=True) from None
    return fs


def why_unserved(within: float = 3.0) -> str:
    """Why the first gluster mount here that does not serve does not, or "": what an action that met
    "Transport endpoint is not connected" adds to its error. The mount's client learns that bricks went
    away some 0.1-1 s after a write to them failed: it is probed again for up to `within` seconds."""
    import time

    deadline = time.monotonic() + within
    while True:
        for mount in read_mounts():
            if mount.fstype == FUSE_TYPE:
                try:
                    probe(mount)
                except Unserved as exc:
                    return str(exc)
        if time.monotonic() > deadline:
            return ""
        time.sleep(0.1)


def _unserved(mount: Mount, exc: OSError, statfs_answered: bool) -> Unserved:
    """Why `mount` failed with `exc`: a gone FUSE client, no brick answering, or lost quorum."""
    from one_gluster.core.processes import fuse_client_of

    volume, where = mount.volume_name, mount.mount_point
    if fuse_client_of(where) is None:
        return Unserved(f"The gluster mount of {mount.source} at {where} is dead ({exc.strerror}): remount it "
                        f"(umount -l {where}; mount -t glusterfs {mount.source} {where})", "dead")
    check = f"`one-gluster check {volume} --host <a live server>`"
    if statfs_answered:
        return Unserved(f"Gluster volume {volume} has lost quorum: too few of its bricks answer its mount at "
                        f"{where} ({exc.strerror}), and it refuses every read and write until enough are back; "
                        f"{check} names the lost servers and bricks", "no quorum")
    return Unserved(f"No brick of gluster volume {volume} answers its mount at {where} ({exc.strerror}): its "
                    "servers are down, or stopped their bricks when the pool lost server quorum; the mount "
                    f"serves again by itself when they are back, and {check} names them", "unreachable")


def refresh(path: str) -> None:
    """Make the mount show file `path` as the bricks hold it now.

    The mount and a VM's QEMU are separate gluster clients: for about 2 s after QEMU has written a file
    and stopped, the mount may still give the size, times and pages it saw before (gluster's md-cache,
    the kernel's attribute and page caches). `qemu-img` working from that view loses what QEMU wrote:
    a snapshot taken through the mount then rewrites the qcow2 tables as they were. A change of the
    file's mode to itself is answered by the bricks, and that answer replaces the cached attributes;
    the mode itself does not change, as QEMU's writes never touch it. When the size or the modification
    time was not what the mount had, the file's cached pages are dropped too: they may be older than
    the file (the kernel here drops them on that answer already; this does not rely on it). An
    unchanged file keeps them, so that copying an image read before stays a copy from memory. A file
    that the drivers' user does not own cannot be asked: its pages are dropped."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        seen = os.fstat(fd)
        try:
            os.fchmod(fd, stat.S_IMODE(seen.st_mode))
            now = os.fstat(fd)
            changed = (now.st_size, now.st_mtime_ns) != (seen.st_size, seen.st_mtime_ns)
        except PermissionError:
            changed = True
        if changed:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)

"""FUSE mounts of a gluster volume, and `one-gluster mount`: the datastore layout on a node.

OpenNebula core names a gluster disk `GLUSTER_VOLUME/<vmid>/disk.<i>` or
`GLUSTER_VOLUME/<basename of SOURCE>`, relative to the volume root, so the volume is mounted as the
system datastore directory and each image datastore directory is a link to it. Every step is
idempotent: a rerun reports what is already right, and a dead mount is mounted again.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple, Optional, Sequence

from one_gluster.admin.file_edits import replace
from one_gluster.admin.report import Finding
from one_gluster.core.commands import run
from one_gluster.core.errors import DriverError
from one_gluster.core.volume import DEFAULT_PORT, FUSE_TYPE, Server, Unserved, probe, read_mounts


def state(mount_point: str) -> str:
    """'mounted'; 'dead' (the FUSE client is gone), 'unreachable' (no brick answers) or 'no quorum'
    (too few bricks answer: the replicas refuse every read and write), as the drivers' guard finds it;
    or 'absent'."""
    return served(mount_point)[0]


def served(mount_point: str) -> tuple[str, str]:
    """The state of the gluster mount at `mount_point` and, where it does not serve, why."""
    for m in read_mounts():
        if m.mount_point == mount_point and m.fstype == FUSE_TYPE:
            try:
                probe(m)
                return "mounted", ""
            except Unserved as exc:
                return exc.state, str(exc)
    return "absent", ""


def mount_points_of(source: str) -> list[str]:
    """Every mount point of gluster `source` (`host:/volume`), live or dead, in mount order."""
    return [m.mount_point for m in read_mounts() if m.fstype == FUSE_TYPE and m.source == source]


def source_of(mount_point: str) -> str:
    return next(m.source for m in reversed(read_mounts()) if m.mount_point == mount_point)


def mount(source: str, mount_point: str, options: Sequence[str] = (), reconnect: float = 15.0) -> None:
    """Mount `source` (`host:/volume[/subdir]`) at `mount_point`, unless it is mounted there already. A
    mount whose client lives but finds too few bricks is not remounted (a new client would find no
    more): it is given `reconnect` seconds to find them (it retries every few seconds by itself, as
    after bricks were just started again), then refused with what is wrong."""
    now, why = served(mount_point)
    if now == "mounted":
        return
    if now in ("unreachable", "no quorum"):
        deadline = time.monotonic() + reconnect
        while now in ("unreachable", "no quorum") and time.monotonic() < deadline:
            time.sleep(0.5)
            now, why = served(mount_point)
        if now in ("unreachable", "no quorum"):
            raise DriverError(why)
        if now == "mounted":
            return
    if now == "dead":
        run("umount", "-l", mount_point, what="Unmounting the dead mount")
    os.makedirs(mount_point, exist_ok=True)
    run("mount", "-t", "glusterfs", *(["-o", ",".join(options)] if options else []), source, mount_point,
        what=f"Mounting {source}")
    if state(mount_point) != "mounted":
        raise DriverError(f"{source} did not mount at {mount_point}")


def unmount(mount_point: str) -> None:
    while state(mount_point) != "absent":
        run("umount", "-l", mount_point, what=f"Unmounting {mount_point}")


class Layout(NamedTuple):
    """Where the datastores of one gluster volume live on a node."""

    volume: str                    # GLUSTER_VOLUME: name[/subdir]
    servers: tuple[Server, ...]    # the first serves the volfile, the others are backups
    datastores: str                # DATASTORE_LOCATION
    system: int                    # the system datastore: the mount point
    images: tuple[int, ...]        # image datastores: links to the system datastore's directory

    @property
    def mount_point(self) -> str:
        return os.path.join(self.datastores, str(self.system))

    @property
    def source(self) -> str:
        return f"{self.servers[0].host}:/{self.volume}"

    @property
    def options(self) -> list[str]:
        options = ["_netdev"]
        backups = [s.host for s in self.servers[1:]]
        if backups:
            options.append("backup-volfile-servers=" + ":".join(backups))
        if self.servers[0].effective_port != DEFAULT_PORT:
            options.append(f"server-port={self.servers[0].effective_port}")
        return options

    @property
    def fstab_line(self) -> str:
        return f"{self.source} {self.mount_point} glusterfs defaults,{','.join(self.options)} 0 0\n"


def with_brick_hosts(servers: tuple[Server, ...], brick_hosts: Sequence[str]) -> tuple[Server, ...]:
    """A single GLUSTER_HOST gets the volume's other brick hosts as volfile backups (as vdsm does)."""
    if len(servers) != 1:
        return servers
    others = [h for h in dict.fromkeys(brick_hosts) if h != servers[0].host]
    return servers + tuple(Server(h) for h in others)


def set_up(layout: Layout, owner: Optional[tuple[int, int]], fstab: Optional[str], dry_run: bool) -> list[Finding]:
    """Mount the volume at the system datastore, link the image datastores, own it, record it in fstab."""
    findings = [_mount(layout, dry_run)]
    if findings[0].status == "fail":
        return findings
    findings.append(_own(layout.mount_point, owner, dry_run))
    findings += [_link(layout, image, dry_run) for image in layout.images]
    if fstab:
        findings.append(_fstab(layout, fstab, dry_run))
    return findings


def _mount(layout: Layout, dry_run: bool) -> Finding:
    where, check = layout.mount_point, f"mount {layout.mount_point}"
    now, why = served(where)
    if now in ("unreachable", "no quorum"):
        return Finding("fail", check, why, "bring the volume's servers back (`one-gluster check`)")
    if now == "mounted":
        source = source_of(where)
        mounted = source.partition(":")[2].strip("/")
        if mounted != layout.volume.strip("/"):
            return Finding("fail", check, f"a mount of {mounted!r} is there, not of {layout.volume!r}",
                           f"umount {where}")
        return Finding("ok", check, f"{source} already mounted")
    if now == "absent" and os.path.isdir(where) and os.listdir(where):
        return Finding("fail", check, f"{where} holds files that the mount would hide",
                       "move them away (onto the volume once mounted), then rerun")
    what = ("dead mount (transport endpoint not connected), mounted again" if now == "dead" else "mounted") + \
        f": mount -t glusterfs -o {','.join(layout.options)} {layout.source} {where}"
    if dry_run:
        return Finding("warn", check, f"would be {what}")
    mount(layout.source, where, layout.options)
    return Finding("ok", check, what)


def _own(mount_point: str, owner: Optional[tuple[int, int]], dry_run: bool) -> Finding:
    if owner is None:
        return Finding("warn", "owner", "no oneadmin user here", "one-gluster mount ... --owner UID:GID")
    if dry_run and state(mount_point) != "mounted":
        return Finding("warn", "owner", f"would be {owner[0]}:{owner[1]}")
    st = os.stat(mount_point)
    if (st.st_uid, st.st_gid) == owner:
        return Finding("ok", "owner", f"{owner[0]}:{owner[1]}")
    if dry_run:
        return Finding("warn", "owner", f"{st.st_uid}:{st.st_gid}, would be {owner[0]}:{owner[1]}")
    os.chown(mount_point, *owner)
    return Finding("ok", "owner", f"{st.st_uid}:{st.st_gid} changed to {owner[0]}:{owner[1]}")


def _link(layout: Layout, image: int, dry_run: bool) -> Finding:
    path, target = os.path.join(layout.datastores, str(image)), str(layout.system)
    check = f"image datastore {image}"
    if os.path.realpath(path) == os.path.realpath(layout.mount_point):
        return Finding("ok", check, f"{path} is the system datastore's directory")
    if os.path.islink(path) or (os.path.exists(path) and not (os.path.isdir(path) and not os.listdir(path))):
        return Finding("fail", check, f"{path} is another directory than {layout.mount_point}: core would not "
                       "find its images on the volume", f"move its content away and remove {path}, then rerun")
    if dry_run:
        return Finding("warn", check, f"would link {path} -> {target}")
    if os.path.isdir(path):
        os.rmdir(path)
    os.symlink(target, path)
    return Finding("ok", check, f"linked {path} -> {target}")


def _fstab(layout: Layout, fstab: str, dry_run: bool) -> Finding:
    with open(fstab) as f:
        lines = f.readlines()
    mine = [line for line in lines if len(line.split()) > 1 and not line.lstrip().startswith("#")
            and line.split()[1] == layout.mount_point]
    if mine:
        if mine[0].split() == layout.fstab_line.split():
            return Finding("ok", f"fstab {fstab}", "entry present")
        return Finding("warn", f"fstab {fstab}", f"another entry for {layout.mount_point}: {mine[0].strip()}",
                       f"replace it with: {layout.fstab_line.strip()}")
    if dry_run:
        return Finding("warn", f"fstab {fstab}", f"would add: {layout.fstab_line.strip()}")
    text = "".join(lines)
    backup = replace(fstab, text + ("" if not text or text.endswith("\n") else "\n") + layout.fstab_line)
    return Finding("ok", f"fstab {fstab}", f"added: {layout.fstab_line.strip()} (backup {backup})")

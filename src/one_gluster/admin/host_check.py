"""`one-gluster host check`: what a KVM host can run of a gluster datastore, each finding with its fix.

The facts come from the host probe (`host_probe.sh`, the same script OpenNebula's monitor runs on
every host), run here or on the host through ssh as oneadmin reaches it: whether the host's QEMU
opens gluster disks (QEMU is asked, not its package list), QEMU's version, libvirtd, the gluster FUSE
mounts with their volfile servers, owner and liveness, and whether glusterd and the bricks answer.
From them: which DISK_TYPE the host can run, GLUSTER (libgfapi) and FILE (the FUSE mount).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Optional

from one_gluster.admin.report import Finding
from one_gluster.core.ssh import run_on

PROBE = Path(__file__).with_name("host_probe.sh")
DEPRECATED, REMOVED = (9, 2), (11, 1)      # QEMU's gluster driver: deprecated in 9.2, not built from 11.1


class Mount(NamedTuple):
    """A gluster FUSE mount on the host, as the probe saw it."""

    live: bool
    source: str                   # host:/volume[/subdir]
    point: str
    owner: str                    # uid:gid of the mount point
    servers: tuple[str, ...]      # the volfile servers the client asks, in order


class Facts(NamedTuple):
    """What the probe reported of a host."""

    gfapi: str                    # YES, NO, UNKNOWN (no qemu-img)
    qemu: str                     # version
    qemu_answer: str
    libvirtd: bool
    mounts: tuple[Mount, ...]
    ports: tuple[tuple[str, ...], ...]    # (kind, host, port, state[, brick])


def parse(out: str) -> Facts:
    """The probe's `--details` output."""
    values: dict[str, str] = {}
    mounts, ports = [], []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key == "MOUNT":
            state, source, point, owner, servers = (value.split(" ", 4) + [""] * 5)[:5]
            mounts.append(Mount(state == "live", source, point, owner, tuple(filter(None, servers.split(",")))))
        elif key == "PORT":
            ports.append(tuple(value.split()))
        else:
            values[key] = value.strip('"')
    return Facts(values.get("GLUSTER_GFAPI", "UNKNOWN"), values.get("GLUSTER_QEMU", ""),
                 values.get("QEMU_ANSWER", ""), values.get("LIBVIRTD") == "running", tuple(mounts), tuple(ports))


def probe(host: Optional[str]) -> Facts:
    """Run the probe here (no `host`), or on `host` through ssh."""
    return parse(run_on(host or "", "bash", "-s", "--", "--details", stdin=PROBE.read_bytes(),
                        what=f"The host probe{' on ' + host if host else ''}"))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def qemu_findings(facts: Facts) -> list[Finding]:
    """Whether QEMU opens gluster disks, and where its version stands against the driver's removal."""
    if facts.gfapi == "YES":
        found = [Finding("ok", "qemu gluster driver", "QEMU opens gluster:// disks (libgfapi)")]
    elif facts.gfapi == "NO":
        found = [Finding("warn", "qemu gluster driver", f"QEMU cannot open gluster disks: {facts.qemu_answer[-160:]}",
                         "use DISK_TYPE=FILE datastores for VMs on this host (one-gluster datastore create "
                         "--disk-type FILE), or install QEMU's gluster module (Debian: qemu-block-extra)")]
    else:
        found = [Finding("fail", "qemu gluster driver", "no qemu-img here to ask", "apt-get install qemu-utils")]
    version = _version(facts.qemu)
    if not version:
        found.append(Finding("warn", "qemu version", "unknown", "install QEMU (Debian: qemu-system-x86)"))
    elif version >= REMOVED:
        found.append(Finding("note", "qemu version", f"{facts.qemu}: built without the gluster driver from 11.1 on"))
    elif version >= DEPRECATED:
        found.append(Finding("note", "qemu version", f"{facts.qemu}: the gluster driver is deprecated since 9.2 "
                             "and gone in 11.1: plan for DISK_TYPE=FILE"))
    else:
        found.append(Finding("ok", "qemu version", facts.qemu))
    return found


def mount_findings(facts: Facts, mount_point: Optional[str], owner: Optional[tuple[int, int]]) -> list[Finding]:
    """The volume mounted live at the system datastore directory (`mount_point`; every gluster mount
    when not given), with backup volfile servers, owned by oneadmin."""
    mounts = [m for m in facts.mounts if mount_point is None or m.point == mount_point]
    if not mounts:
        where = mount_point or "any directory"
        return [Finding("fail", "mount", f"no gluster volume is mounted at {where}",
                        "one-gluster host prepare VOLUME --host GLUSTER_HOST --system ID --images ID...")]
    found = []
    for m in mounts:
        check = f"mount {m.point}"
        if not m.live:
            found.append(Finding("fail", check, f"{m.source} is mounted but dead (transport endpoint not "
                                 "connected)", "one-gluster host prepare ... (mounts it again)"))
            continue
        found.append(Finding("ok", check, f"{m.source}, live"))
        if len(m.servers) < 2:
            found.append(Finding("warn", f"{check} failover", f"one volfile server ({', '.join(m.servers)}): a "
                                 "new mount fails while it is down", "list every GLUSTER_HOST entry: "
                                 "one-gluster host prepare ... --host \"gs1 gs2 gs3\""))
        else:
            found.append(Finding("ok", f"{check} failover", f"volfile servers {', '.join(m.servers)}"))
        if owner is not None and m.owner != f"{owner[0]}:{owner[1]}":
            found.append(Finding("warn", f"{check} owner", f"{m.owner}, not oneadmin's {owner[0]}:{owner[1]}",
                                 "one-gluster prepare VOLUME (storage.owner-uid/gid)"))
    return found


def port_findings(facts: Facts) -> list[Finding]:
    """glusterd on every volfile server and every brick, reachable from the host."""
    found = []
    for kind, host, port, state, *brick in facts.ports:
        what = f"{kind} {brick[0] if brick else host}:{port}" if kind == "brick" else f"glusterd {host}:{port}"
        if state == "open":
            found.append(Finding("ok", what, "reachable"))
        elif state == "offline":
            found.append(Finding("warn", f"brick {brick[0] if brick else host}", "offline",
                                 "gluster volume start VOLUME force, on its server"))
        else:
            found.append(Finding("fail", what, "not reachable from this host",
                                 f"open TCP {port} on {host} to the hosts (glusterd 24007, bricks 49152 and up)"))
    if facts.mounts and not any(kind == "brick" for kind, *_ in facts.ports):
        found.append(Finding("note", "brick ports", "not checked: no gluster CLI on this host to list them"))
    return found


def disk_types(facts: Facts, mount_point: Optional[str]) -> list[str]:
    """The DISK_TYPEs the host can run. Both need the volume mounted live (volatile disks and context
    ISOs are files in the VM's directory whatever the image datastore's DISK_TYPE) and its servers
    reachable (an offline brick of a replica is no bar); GLUSTER also needs QEMU's gluster driver."""
    mounted = any(m.live for m in facts.mounts if mount_point is None or m.point == mount_point)
    reachable = not any(port[3] == "closed" for port in facts.ports)
    if not (mounted and reachable):
        return []
    return ["GLUSTER", "FILE"] if facts.gfapi == "YES" else ["FILE"]


def check(host: Optional[str], mount_point: Optional[str],
          owner: Optional[tuple[int, int]]) -> tuple[list[Finding], list[str]]:
    """Every finding for `host` (None: this machine), and the DISK_TYPEs it can run."""
    facts = probe(host)
    findings = qemu_findings(facts)
    findings.append(Finding("ok", "libvirtd", "running") if facts.libvirtd else
                    Finding("fail", "libvirtd", "not running", "systemctl enable --now libvirtd"))
    mount_point = os.path.normpath(mount_point) if mount_point else None
    findings += mount_findings(facts, mount_point, owner)
    findings += port_findings(facts)
    kinds = disk_types(facts, mount_point)
    findings.append(Finding("ok" if kinds else "fail", "disk types", " and ".join(kinds) if kinds else "none",
                            "" if kinds else "mount the volume (one-gluster host prepare), reach its servers"))
    return findings, kinds

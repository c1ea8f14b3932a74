"""Is a gluster volume fit for VM images? `one-gluster check` and what `one-gluster prepare` changes.

The model is oVirt's (vdsm): warn rather than refuse. A volume should be started, replicated
(replica 3 or an arbiter; disperse, plain distribute and replica 2 are warned), with every brick
online, the virt option group in force (compared by effective value, from the group file that
gluster installs or the list gluster 10 ships), client and server quorum, insecure ports allowed
for QEMU, and files owned by oneadmin. Every finding carries the command that fixes it.
"""

from __future__ import annotations

import pwd
from typing import NamedTuple, Optional

from one_gluster.admin.report import Finding
from one_gluster.core import gluster
from one_gluster.core.errors import DriverError
from one_gluster.core.gluster_xml import VolumeInfo

# The virt groups of gluster 10 (extras/group-virt.example, group-distributed-virt), for when the
# group file is not installed here (a front-end with only the gluster client and CLI).
KNOWN_GROUPS = {
    "virt": {
        "performance.quick-read": "off", "performance.read-ahead": "off", "performance.io-cache": "off",
        "performance.low-prio-threads": "32", "network.remote-dio": "disable",
        "performance.strict-o-direct": "on", "cluster.eager-lock": "enable", "cluster.quorum-type": "auto",
        "cluster.server-quorum-type": "server", "cluster.data-self-heal-algorithm": "full",
        "cluster.locking-scheme": "granular", "cluster.shd-max-threads": "8",
        "cluster.shd-wait-qlength": "10000", "features.shard": "on", "user.cifs": "off",
        "cluster.choose-local": "off", "client.event-threads": "4", "server.event-threads": "4",
        "performance.client-io-threads": "on", "network.ping-timeout": "20", "server.tcp-user-timeout": "20",
        "server.keepalive-time": "10", "server.keepalive-interval": "2", "server.keepalive-count": "5",
        "cluster.lookup-optimize": "off",
    },
    "distributed-virt": {
        "performance.quick-read": "off", "performance.read-ahead": "off", "performance.io-cache": "off",
        "performance.low-prio-threads": "32", "network.remote-dio": "enable", "features.shard": "on",
        "user.cifs": "off", "client.event-threads": "4", "server.event-threads": "4",
        "performance.client-io-threads": "on", "cluster.lookup-optimize": "off",
    },
}

# gluster 10 defaults of the options checked, for a remote check: glusterd answers `volume get`
# only to a CLI on its own node, and `volume info` lists only the options changed from defaults.
DEFAULTS = {
    "performance.quick-read": "on", "performance.read-ahead": "on", "performance.io-cache": "on",
    "performance.low-prio-threads": "16", "network.remote-dio": "disable", "performance.strict-o-direct": "off",
    "cluster.eager-lock": "on", "cluster.server-quorum-type": "off",
    "cluster.data-self-heal-algorithm": "(null)", "cluster.locking-scheme": "full", "cluster.shd-max-threads": "1",
    "cluster.shd-wait-qlength": "1024", "features.shard": "off", "cluster.choose-local": "true",
    "client.event-threads": "2", "server.event-threads": "2", "performance.client-io-threads": "on",
    "network.ping-timeout": "42", "server.tcp-user-timeout": "42", "server.keepalive-time": "20",
    "server.keepalive-interval": "2", "server.keepalive-count": "9", "cluster.lookup-optimize": "on",
    "server.allow-insecure": "on", "storage.owner-uid": "-1", "storage.owner-gid": "-1",
}

SHARD = "features.shard"
QUORUM = ("cluster.quorum-type", "cluster.server-quorum-type")
_TRUE = {"on", "enable", "true", "yes", "1"}
_FALSE = {"off", "disable", "false", "no", "0"}


def same_value(a: str, b: str) -> bool:
    """gluster's booleans have many spellings (on/enable/true/yes/1)."""
    a, b = a.strip().lower(), b.strip().lower()
    return a == b or (a in _TRUE and b in _TRUE) or (a in _FALSE and b in _FALSE)


class Change(NamedTuple):
    option: str
    before: str
    after: str


def oneadmin_ids() -> Optional[tuple[int, int]]:
    try:
        entry = pwd.getpwnam("oneadmin")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def replicated(info: VolumeInfo) -> bool:
    return info.replica_count > 1


def option_group(info: VolumeInfo) -> str:
    """The option group gluster meant for this volume type (`virt` refuses non-replicated volumes)."""
    return "virt" if replicated(info) else "distributed-virt"


def wanted_options(info: VolumeInfo, groups_dir: str = gluster.GROUPS_DIR) -> tuple[dict[str, str], str]:
    """The group's options, and where they were read."""
    group = option_group(info)
    options = gluster.group_file(group, groups_dir)
    if options is not None:
        return options, f"{groups_dir}/{group}"
    return KNOWN_GROUPS[group], f"the {group} group of gluster 10"


def effective(info: VolumeInfo, remote: Optional[str]) -> dict[str, str]:
    """Option values in force. `volume get all` leaves out user.* options, which `volume info` lists once set."""
    if remote is None:
        return {**info.options, **gluster.effective_options(info.name)}
    # glusterd turns client quorum on by itself from replica 3 on, without listing it in `volume info`
    quorum = {"cluster.quorum-type": "auto" if info.replica_count >= 3 else "none"}
    return {**DEFAULTS, **quorum, **info.options}


def _type_finding(info: VolumeInfo) -> Finding:
    name = info.name
    if info.disperse_count or "Disperse" in info.type:
        return Finding("warn", "type", f"{info.type} (disperse {info.disperse_count}): not for VM images "
                       "(QEMU crashes on live merge, gluster #1309)",
                       f"create a replica 3 volume and move the images: gluster volume create {name}-r3 replica 3 ...")
    copies = info.replica_count - info.arbiter_count
    layout = f"replica {info.replica_count}" + (f" arbiter {info.arbiter_count}" if info.arbiter_count else "")
    if info.replica_count >= 3:
        return Finding("ok", "type", f"{info.type}, {layout}")
    if info.replica_count == 2:
        return Finding("warn", "type", f"{info.type}, replica 2 with {copies} data copies: split-brain risk",
                       f"gluster volume add-brick {name} replica 3 arbiter 1 HOST:/BRICK (one per replica set)")
    return Finding("warn", "type", f"{info.type}, no replica: a lost brick loses the images on it",
                   f"gluster volume add-brick {name} replica 3 HOST2:/BRICK HOST3:/BRICK (two per brick)")


def _brick_findings(info: VolumeInfo, remote: Optional[str]) -> list[Finding]:
    status = {b.name: b for b in gluster.brick_status(info.name, remote)}
    size = max(info.replica_count, info.disperse_count, 1)
    fix = f"gluster volume start {info.name} force"
    findings = []
    for first in range(0, len(info.bricks), size):
        bricks = info.bricks[first:first + size]
        online = [b for b in bricks if status.get(b.name) is not None and status[b.name].online]
        offline = [b.name for b in bricks if b not in online]
        where = f"bricks {first + 1}-{first + len(bricks)}" if size > 1 else f"brick {first + 1}"
        if not offline:
            findings.append(Finding("ok", where, f"{len(online)} of {len(bricks)} online"))
            continue
        quorum = size > 1 and (2 * len(online) > size or (2 * len(online) == size and bricks[0] in online))
        if quorum:
            findings.append(Finding("warn", where, f"offline: {', '.join(offline)}; the others serve, "
                                    "heals are pending", fix))
        else:
            findings.append(Finding("fail", where, f"offline: {', '.join(offline)}; the images on them are "
                                    "unreachable", fix))
    return findings


def _peer_findings(name: str, remote: Optional[str]) -> list[Finding]:
    """The other servers of the trusted pool, as the asked glusterd sees them (none: a single server)."""
    peers = gluster.peers(remote)
    if not peers:
        return []
    lost = [host for host, connected in peers.items() if not connected]
    findings = [Finding("fail", f"peer {host}", "disconnected: its glusterd and bricks do not answer; new mounts "
                        "fail over to the next GLUSTER_HOST entry", f"start glusterd on {host} (it starts its "
                        f"bricks), then watch the heal: gluster volume heal {name} info") for host in lost]
    if len(lost) < len(peers):
        findings.append(Finding("ok", "peers", f"{len(peers) - len(lost)} of {len(peers)} connected"))
    return findings


def check(name: str, remote: Optional[str] = None, owner: Optional[tuple[int, int]] = None,
          groups_dir: str = gluster.GROUPS_DIR) -> list[Finding]:
    """Every finding about volume `name` (through the glusterd of `remote` when given)."""
    info = gluster.volume_info(name, remote)
    if info is None:
        known = ", ".join(gluster.volume_names(remote)) or "none"
        return [Finding("fail", "volume", f"no volume {name!r} (volumes: {known})",
                        f"gluster volume create {name} replica 3 HOST1:/BRICK HOST2:/BRICK HOST3:/BRICK")]
    findings = [Finding("ok", "volume", f"{name}: started") if info.started else
                Finding("fail", "volume", f"{name}: {info.status.lower()}", f"gluster volume start {name}"),
                _type_finding(info)]
    findings += _peer_findings(name, remote)
    if info.started:
        findings += _brick_findings(info, remote)
    values = effective(info, remote)
    if remote is not None:
        findings.append(Finding("note", "options", f"through {remote}: options not listed by `volume info` "
                                "are taken at gluster 10's defaults (glusterd answers `volume get` locally only)"))
    findings += option_findings(info, values, groups_dir)
    findings += _access_findings(info, values, owner)
    return findings


def option_findings(info: VolumeInfo, values: dict[str, str], groups_dir: str = gluster.GROUPS_DIR) -> list[Finding]:
    wanted, source = wanted_options(info, groups_dir)
    name = info.name
    findings = []
    tuned = {k: v for k, v in wanted.items() if k != SHARD and k not in QUORUM}
    wrong = [k for k, v in tuned.items() if not same_value(values.get(k, "(not set)"), v)]
    findings.append(Finding("warn", "virt options", f"{len(wrong)} of {len(tuned)} differ from {source}",
                            f"one-gluster prepare {name}") if wrong else
                    Finding("ok", "virt options", f"{len(tuned)} as in {source}"))
    for key in wrong:
        findings.append(Finding("warn", f"option {key}", f"{values.get(key, '(not set)')}, want {tuned[key]}",
                                f"gluster volume set {name} {key} {tuned[key]}"))
    if SHARD in wanted:
        shard = values.get(SHARD, "off")
        findings.append(Finding("ok" if same_value(shard, wanted[SHARD]) else "note", f"option {SHARD}",
                                f"{shard}: prepare leaves it alone (never turn it off once images exist)",
                                "" if same_value(shard, wanted[SHARD]) else
                                f"on a new, empty volume only: gluster volume set {name} {SHARD} on"))
    if replicated(info):
        quorum = {k: values.get(k, "(not set)") for k in QUORUM if k in wanted}
        bad = {k: wanted[k] for k, v in quorum.items() if not same_value(v, wanted[k])}
        found = ", ".join(f"{k.split('.')[1]} {v}" for k, v in quorum.items())
        findings.append(Finding("warn", "quorum", f"{found}: split-brain is possible",
                                f"gluster volume set {name} " + " ".join(f"{k} {v}" for k, v in bad.items()))
                        if bad else Finding("ok", "quorum", found))
    return findings


def _access_findings(info: VolumeInfo, values: dict[str, str], owner: Optional[tuple[int, int]]) -> list[Finding]:
    name = info.name
    insecure = values.get("server.allow-insecure", "on")
    findings = [Finding("ok", "server.allow-insecure", insecure) if same_value(insecure, "on") else
                Finding("warn", "server.allow-insecure", f"{insecure}: QEMU, running unprivileged, is refused",
                        f"gluster volume set {name} server.allow-insecure on")]
    uid, gid = values.get("storage.owner-uid", "-1"), values.get("storage.owner-gid", "-1")
    if owner is None:
        findings.append(Finding("warn", "owner", f"uid {uid}, gid {gid}; no oneadmin user here to compare with",
                                "one-gluster check --owner UID:GID (oneadmin's ids on the OpenNebula nodes)"))
    elif (uid, gid) == (str(owner[0]), str(owner[1])):
        findings.append(Finding("ok", "owner", f"uid {uid}, gid {gid} (oneadmin)"))
    else:
        findings.append(Finding("warn", "owner", f"uid {uid}, gid {gid}; oneadmin is {owner[0]}:{owner[1]}",
                                f"gluster volume set {name} storage.owner-uid {owner[0]} storage.owner-gid {owner[1]}"))
    return findings


def plan(name: str, remote: Optional[str] = None, owner: Optional[tuple[int, int]] = None,
         groups_dir: str = gluster.GROUPS_DIR) -> list[Change]:
    """What `prepare` sets: the volume type's option group except sharding, insecure ports, owner ids."""
    info = gluster.volume_info(name, remote)
    if info is None:
        raise DriverError(f"No gluster volume {name!r}" + (f" on {remote}" if remote else ""))
    values = effective(info, remote)
    wanted = {k: v for k, v in wanted_options(info, groups_dir)[0].items() if k != SHARD}
    wanted["server.allow-insecure"] = "on"
    if owner is not None:
        wanted.update({"storage.owner-uid": str(owner[0]), "storage.owner-gid": str(owner[1])})
    return [Change(k, values.get(k, "(not set)"), v) for k, v in wanted.items()
            if not same_value(values.get(k, "(not set)"), v)]


def prepare(name: str, changes: list[Change], remote: Optional[str] = None) -> None:
    if changes:
        gluster.set_options(name, {c.option: c.after for c in changes}, remote)

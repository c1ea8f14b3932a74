"""What the `gluster` CLI prints with `--xml`, read by pure functions (the commands themselves are run
by `core.gluster`): unit-tested over outputs recorded from gluster 10.3 (tests/fixtures/gluster)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from lxml import etree

from one_gluster.core.errors import DriverError
from one_gluster.core.xmldoc import parse_xml


def cli_output(out: bytes, command: str) -> etree._Element:
    """<cliOutput> of `gluster <command> --xml`, refusing a failed operation with gluster's reason."""
    root = parse_xml(out, "gluster CLI output")
    if root.findtext("opRet", "-1").strip() != "0":
        error = root.findtext("opErrstr") or "failed"
        raise DriverError(f"gluster {command}: {error.strip()}")
    return root


@dataclass(frozen=True)
class Brick:
    host: str
    path: str
    online: Optional[bool] = None
    pid: Optional[int] = None

    @property
    def name(self) -> str:
        return f"{self.host}:{self.path}"


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    status: str                       # Created, Started, Stopped
    type: str                         # Distribute, Replicate, Disperse, ...
    replica_count: int
    arbiter_count: int
    disperse_count: int
    bricks: tuple[Brick, ...]
    options: dict[str, str] = field(default_factory=dict)   # only those changed from defaults

    @property
    def started(self) -> bool:
        return self.status == "Started"


def volume_names(root: etree._Element) -> list[str]:
    """`volume list`"""
    return [v.text.strip() for v in root.iter("volume") if v.text]


def volume_info(root: etree._Element, name: str) -> Optional[VolumeInfo]:
    """`volume info NAME`: the volume's definition, or None when the output holds none."""
    node = root.find("volInfo/volumes/volume")
    if node is None:
        return None
    bricks = []
    for b in node.iterfind("bricks/brick"):
        host, _, path = (b.findtext("name") or "").rpartition(":")
        bricks.append(Brick(host, path))
    return VolumeInfo(
        name=name,
        status=node.findtext("statusStr", ""),
        type=node.findtext("typeStr", ""),
        replica_count=int(node.findtext("replicaCount", "1")),
        arbiter_count=int(node.findtext("arbiterCount", "0")),
        disperse_count=int(node.findtext("disperseCount", "0")),
        bricks=tuple(bricks),
        options={o.findtext("name", ""): o.findtext("value", "") for o in node.iterfind("options/option")},
    )


def brick_status(root: etree._Element) -> list[Brick]:
    """`volume status NAME`: the bricks, with whether each runs and its pid (not the daemons)."""
    bricks = []
    for node in root.iterfind("volStatus/volumes/volume/node"):
        path = node.findtext("path", "")
        if not path.startswith("/"):
            continue                   # self-heal daemon and other services
        pid = node.findtext("pid", "")
        bricks.append(Brick(node.findtext("hostname", ""), path, node.findtext("status") == "1",
                            int(pid) if pid.isdigit() and int(pid) > 0 else None))
    return bricks


def peers(root: etree._Element) -> dict[str, bool]:
    """`peer status`: each other server of the pool, and whether it is connected."""
    return {peer.findtext("hostname", ""): peer.findtext("connected") == "1"
            for peer in root.iterfind("peerStatus/peer")}


def effective_options(root: etree._Element) -> dict[str, str]:
    """`volume get NAME all`: every option's value in force, defaults included."""
    values = {}
    for opt in root.iterfind("volGetopts/Opt"):
        value = opt.findtext("Value", "").strip()
        values[opt.findtext("Option", "").strip()] = value.removesuffix("(DEFAULT)").strip()
    return values


def group_options(text: str) -> dict[str, str]:
    """An option group file of glusterd (`/var/lib/glusterd/groups/<group>`): `key=value` lines."""
    pairs = (line.strip().partition("=") for line in text.splitlines()
             if "=" in line and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, _, value in pairs}

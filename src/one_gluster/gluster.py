"""The `gluster` CLI in script mode with XML output: volumes, their bricks, status and options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from lxml import etree

from .commands import run
from .errors import DriverError
from .xmldoc import parse_xml

GLUSTER = "gluster"


def cli(*args: str, remote: Optional[str] = None) -> etree._Element:
    """Run `gluster --mode=script <args> --xml` (against the glusterd of `remote` when given); return
    <cliOutput>, refusing a failed operation."""
    target = [f"--remote-host={remote}"] if remote else []
    out = run(GLUSTER, "--mode=script", *target, *args, "--xml", what=f"gluster {' '.join(args[:2])}")
    root = parse_xml(out.encode(), "gluster CLI output")
    if root.findtext("opRet", "-1").strip() != "0":
        error = root.findtext("opErrstr") or "failed"
        raise DriverError(f"gluster {' '.join(args)}: {error.strip()}")
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


def volume_names(remote: Optional[str] = None) -> list[str]:
    return [v.text.strip() for v in cli("volume", "list", remote=remote).iter("volume") if v.text]


def volume_info(name: str, remote: Optional[str] = None) -> Optional[VolumeInfo]:
    """The volume's definition, or None when no such volume exists."""
    if name not in volume_names(remote):
        return None
    node = cli("volume", "info", name, remote=remote).find("volInfo/volumes/volume")
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


def brick_status(name: str, remote: Optional[str] = None) -> list[Brick]:
    """Bricks of a started volume with whether each runs, and its pid."""
    bricks = []
    for node in cli("volume", "status", name, remote=remote).iterfind("volStatus/volumes/volume/node"):
        path = node.findtext("path", "")
        if not path.startswith("/"):
            continue                   # self-heal daemon and other services
        pid = node.findtext("pid", "")
        bricks.append(Brick(node.findtext("hostname", ""), path, node.findtext("status") == "1",
                            int(pid) if pid.isdigit() and int(pid) > 0 else None))
    return bricks


def create_volume(name: str, bricks: list[str], replica: int = 1) -> None:
    args = ["volume", "create", name]
    if replica > 1:
        args += ["replica", str(replica)]
    cli(*args, *bricks, "force")


def start_volume(name: str, force: bool = False) -> None:
    cli("volume", "start", name, *(["force"] if force else []))


def stop_volume(name: str) -> None:
    cli("volume", "stop", name, "force")


def delete_volume(name: str) -> None:
    cli("volume", "delete", name)


def set_option(name: str, option: str, value: str) -> None:
    set_options(name, {option: value})


def set_options(name: str, options: dict[str, str], remote: Optional[str] = None) -> None:
    """Set several options in one `volume set` (gluster applies them together or not at all)."""
    cli("volume", "set", name, *(word for pair in options.items() for word in pair), remote=remote)


def effective_options(name: str) -> dict[str, str]:
    """Every option's value in force, defaults included (`volume get VOL all`). glusterd answers this
    only to a CLI on one of its own nodes, not through --remote-host."""
    values = {}
    for opt in cli("volume", "get", name, "all").iterfind("volGetopts/Opt"):
        value = opt.findtext("Value", "").strip()
        values[opt.findtext("Option", "").strip()] = value.removesuffix("(DEFAULT)").strip()
    return values


GROUPS_DIR = "/var/lib/glusterd/groups"


def group_file(group: str, groups_dir: str = GROUPS_DIR) -> Optional[dict[str, str]]:
    """The options of an option group as the installed gluster defines them, or None without the file."""
    try:
        with open(f"{groups_dir}/{group}") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    pairs = (line.strip().partition("=") for line in lines if "=" in line and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, _, value in pairs}

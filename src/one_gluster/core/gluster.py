"""The `gluster` CLI in script mode with XML output: volumes, their bricks, status and options. Its
output is read by `core.gluster_xml`."""

from __future__ import annotations

from typing import Optional

from lxml import etree

from one_gluster.core import gluster_xml
from one_gluster.core.commands import run
from one_gluster.core.gluster_xml import Brick, VolumeInfo

GLUSTER = "gluster"
GROUPS_DIR = "/var/lib/glusterd/groups"


def cli(*args: str, remote: Optional[str] = None, socket: Optional[str] = None) -> etree._Element:
    """Run `gluster --mode=script <args> --xml` (against the glusterd of `remote`, or the one listening
    on `socket`, when given); return <cliOutput>, refusing a failed operation."""
    target = [f"--remote-host={remote}"] if remote else [f"--glusterd-sock={socket}"] if socket else []
    out = run(GLUSTER, "--mode=script", *target, *args, "--xml", what=f"gluster {' '.join(args[:2])}")
    return gluster_xml.cli_output(out.encode(), " ".join(args))


def volume_names(remote: Optional[str] = None) -> list[str]:
    return gluster_xml.volume_names(cli("volume", "list", remote=remote))


def volume_info(name: str, remote: Optional[str] = None) -> Optional[VolumeInfo]:
    """The volume's definition, or None when no such volume exists."""
    if name not in volume_names(remote):
        return None
    return gluster_xml.volume_info(cli("volume", "info", name, remote=remote), name)


def brick_status(name: str, remote: Optional[str] = None) -> list[Brick]:
    """Bricks of a started volume with whether each runs, and its pid."""
    return gluster_xml.brick_status(cli("volume", "status", name, remote=remote))


def peers(remote: Optional[str] = None) -> dict[str, bool]:
    """The other servers of the trusted pool, and whether each is connected."""
    return gluster_xml.peers(cli("peer", "status", remote=remote))


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
    return gluster_xml.effective_options(cli("volume", "get", name, "all"))


def group_file(group: str, groups_dir: str = GROUPS_DIR) -> Optional[dict[str, str]]:
    """The options of an option group as the installed gluster defines them, or None without the file."""
    try:
        with open(f"{groups_dir}/{group}") as f:
            return gluster_xml.group_options(f.read())
    except OSError:
        return None

"""The disks OpenNebula core writes for libvirt: a gluster network disk (DISK_TYPE=GLUSTER, opened
through libgfapi) or a file disk at the system datastore path (DISK_TYPE=FILE, opened through the
host's FUSE mount of the same volume); and QEMU's `gluster://` URIs."""

from __future__ import annotations

import os
from typing import Optional, Sequence

from lxml import etree

from one_gluster.core.volume import Server

TRANSPORTS = ("tcp", "unix", "rdma")


def disk_name(gluster_volume: str, vmid: int, disk_id: int, source: str, clone: bool) -> str:
    """The `name` core gives a gluster disk (LibVirtDriverKVM.cc): the VM's own copy for a clone,
    the image itself (basename of SOURCE) for a persistent or linked disk."""
    volume = gluster_volume.strip("/")
    if clone:
        return f"{volume}/{vmid}/disk.{disk_id}"
    return f"{volume}/{os.path.basename(source.rstrip('/'))}"


def disk_element(name: str, servers: Sequence[Server], fmt: str, target: str = "sda", bus: Optional[str] = None,
                 device: str = "disk", cache: str = "none", discard: str = "unmap",
                 readonly: bool = False) -> etree._Element:
    """`<disk type='network'>` with one `<host>` per GLUSTER_HOST entry (port 24007 unless given)."""
    disk = etree.Element("disk", type="network", device=device)
    source = etree.SubElement(disk, "source", protocol="gluster", name=name)
    for server in servers:
        etree.SubElement(source, "host", name=server.host, port=str(server.effective_port), transport="tcp")
    return _device(disk, fmt, target, bus, device, cache, discard, readonly)


def file_disk_element(path: str, fmt: str, target: str = "sda", bus: Optional[str] = None, device: str = "disk",
                      cache: str = "none", discard: str = "unmap", readonly: bool = False) -> etree._Element:
    """`<disk type='file'>` at `path`: core names every DISK_TYPE=FILE disk by its place in the VM's
    directory of the system datastore (`DATASTORE_LOCATION/<ds>/<vmid>/disk.<i>`)."""
    disk = etree.Element("disk", type="file", device=device)
    etree.SubElement(disk, "source", file=path)
    return _device(disk, fmt, target, bus, device, cache, discard, readonly)


def _device(disk: etree._Element, fmt: str, target: str, bus: Optional[str], device: str, cache: str,
            discard: str, readonly: bool) -> etree._Element:
    """The rest of a `<disk>` as core writes it: target, read-only mark, driver."""
    target_node = etree.SubElement(disk, "target", dev=target)
    if bus:
        target_node.set("bus", bus)
    if readonly or device == "cdrom":
        etree.SubElement(disk, "readonly")
    driver = etree.SubElement(disk, "driver", name="qemu", type=fmt)
    if cache:
        driver.set("cache", cache)
    if discard:
        driver.set("discard", discard)
    return disk


def uri(volume_path: str, server: Optional[Server] = None, transport: str = "tcp",
        socket: Optional[str] = None) -> str:
    """A URI in QEMU's gluster syntax: `gluster[+transport]://[host[:port]]/volume/path[?socket=...]`."""
    if transport not in TRANSPORTS:
        raise ValueError(f"Unknown gluster transport {transport!r}: use {', '.join(TRANSPORTS)}")
    path = "/" + volume_path.strip("/")
    if transport == "unix":
        if not socket:
            raise ValueError("The unix transport needs the glusterd socket path")
        return f"gluster+unix://{path}?socket={socket}"
    if server is None:
        raise ValueError(f"The {transport} transport needs a host")
    host = f"[{server.host}]" if ":" in server.host else server.host
    port = f":{server.port}" if server.port else ""
    scheme = "gluster" if transport == "tcp" else f"gluster+{transport}"
    return f"{scheme}://{host}{port}{path}"

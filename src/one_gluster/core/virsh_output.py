"""What virsh prints and what QEMU answers through it (`virsh qemu-monitor-command`), read by pure
functions (the commands are run by `tm.running_vm`): unit-tested over outputs recorded from libvirt 9
and QEMU 7.2 running a VM from gluster disks (tests/fixtures/libvirt)."""

from __future__ import annotations

import json
from typing import Any, Optional

from one_gluster.core.errors import DriverError
from one_gluster.core.xmldoc import parse_xml


def qmp_return(out: str, command: str, domain: str) -> Any:
    """The `return` of QEMU's reply to `command`, refusing an error reply with QEMU's reason."""
    reply = json.loads(out)
    if "error" in reply:
        raise DriverError(f"QEMU {command} on {domain} failed: {reply['error'].get('desc', reply['error'])}")
    return reply.get("return")


def disk_alias(domain_xml: str, target: str) -> str:
    """libvirt's alias of the disk with target device `target` (`virsh dumpxml`), '' if none."""
    root = parse_xml(domain_xml.encode(), "domain XML")
    return root.xpath("string(devices/disk[target/@dev=$t]/alias/@name)", t=target)


def inserted(devices: list[dict[str, Any]], alias: str) -> Optional[dict[str, Any]]:
    """QEMU's image of the block device whose qdev is libvirt's `alias` (QMP `query-block`), if any."""
    for device in devices:
        if alias in device.get("qdev", "").split("/") and device.get("inserted"):
            return device["inserted"]
    return None


def snapshot_names(image_of: dict[str, Any]) -> list[str]:
    """The internal snapshots of an inserted image (its `image` member)."""
    return [snapshot.get("name", "") for snapshot in image_of.get("image", {}).get("snapshots", [])]


def bitmaps(nodes: list[dict[str, Any]], node: str) -> Optional[list[str]]:
    """The dirty bitmaps of block node `node` (QMP `query-named-block-nodes`), None without that node."""
    for found in nodes:
        if found.get("node-name") == node:
            return [bitmap.get("name", "") for bitmap in found.get("dirty-bitmaps", [])]
    return None


def job_state(out: str) -> dict[str, str]:
    """`virsh domjobinfo`: its `Key: value` lines."""
    state = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            state[key.strip()] = value.strip()
    return state

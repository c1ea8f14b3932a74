"""libvirt checkpoints of a running VM's incremental backups (`one-<vmid>-<n>`, one dirty bitmap in each
disk it covers), kept to what the next backup needs.

A checkpoint lives on in the disk as a persistent bitmap where libvirt forgets it: a transient domain
started again, or a backup taken while the VM was powered off. The parent of an increment is then
defined again from that bitmap; bitmaps of the VM that no checkpoint needs are removed.
"""

from __future__ import annotations

import time
from typing import Iterable

from lxml import etree

from one_gluster.core import increments, log
from one_gluster.core.vm import Disk
from one_gluster.tm.running_vm import bitmaps, node, remove_bitmaps, target_dev, virsh, xml_file


def checkpoint_xml(name: str, devices: Iterable[str], others: Iterable[str], created: int | None = None) -> bytes:
    """A checkpoint with a bitmap in each of `devices` (target names) and none in `others`; `created`
    (seconds since the epoch), which libvirt requires of a checkpoint defined again."""
    root = etree.Element("domaincheckpoint")
    etree.SubElement(root, "name").text = name
    if created is not None:
        etree.SubElement(root, "creationTime").text = str(created)
    disks = etree.SubElement(root, "disks")
    for dev in devices:
        etree.SubElement(disks, "disk", name=dev, checkpoint="bitmap")
    for dev in others:
        etree.SubElement(disks, "disk", name=dev, checkpoint="no")
    return etree.tostring(root)


def _listed(host: str, domain: str, vmid: int) -> list[str]:
    out = virsh(host, "checkpoint-list", domain, "--name", what=f"Listing the checkpoints of {domain}")
    return [name for name in out.split() if increments.is_checkpoint_of(name, vmid)]


def keep_only(host: str, domain: str, disks: list[Disk], others: list[str], parent: str | None,
              folder: str) -> None:
    """Leave VM `disks`' checkpoints and bitmaps to `parent` alone (none for a full backup), known to
    libvirt: the backup about to start counts changes from it and makes the next one."""
    vmid = disks[0].vmid
    devices = [target_dev(disk) for disk in disks]
    nodes = [node(host, domain, disk) for disk in disks]          # QEMU's block node of each disk
    known = _listed(host, domain, vmid)
    if parent and parent not in known:
        for disk, block in zip(disks, nodes):
            if parent not in bitmaps(host, domain, block):
                raise increments.broken_chain(f"Disk {disk.disk_id} of VM {vmid}", parent)
        spec = checkpoint_xml(parent, devices, others, int(time.time()))
        with xml_file(folder, ".checkpoint.xml", spec) as path:
            log.info(f"Defining checkpoint {parent} of {domain} again from its bitmaps")
            virsh(host, "checkpoint-create", domain, "--xmlfile", path, "--redefine",
                  what=f"Defining checkpoint {parent} of {domain}")
        known.append(parent)
    for name in known:
        if name != parent:
            virsh(host, "checkpoint-delete", domain, name, what=f"Deleting checkpoint {name} of {domain}")
    for block in nodes:
        stale = [name for name in bitmaps(host, domain, block)
                 if increments.is_checkpoint_of(name, vmid) and name != parent]
        remove_bitmaps(host, domain, block, stale)

"""A real libvirtd's VMs for the end-to-end tests: the <disk> elements core writes, a domain around
them, and what the running QEMU says of its disks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lxml import etree

from support.drivers import TransferManager
from support.images import qemu_img

URI = "qemu:///system"
BANNER = b"ONE-GLUSTER-BOOT-OK"
# A boot sector that prints BANNER on COM1 and halts: proof that the firmware read the disk.
BOOT_CODE = bytes.fromhex("31c08ed8be157cbaf803ac84c07403eeebf8f4ebfd") + BANNER + b"\0"


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, check=check)


def disk_xml(*args: str) -> etree._Element:
    cli = Path(sys.executable).with_name("one-gluster")
    out = subprocess.run([str(cli), "disk-xml", *args], capture_output=True, text=True, check=True).stdout
    return etree.fromstring(out)


def core_disk(mode: str, tm: TransferManager, vmid: int, disk_id: int, fmt: str, target: str,
              source: str = "") -> etree._Element:
    """The <disk> core writes for disk `disk_id` of the VM: a gluster network disk at core's name
    (GLUSTER), or a file at the VM's directory in the system datastore (FILE; for a persistent disk,
    `disk.<i>` is a link, which vmm/kvm/deploy dereferences)."""
    common = ("--format", fmt, "--target", target)
    if mode == "FILE":
        return disk_xml("--file", os.path.realpath(f"{tm.location}{tm.system_ds}/{vmid}/disk.{disk_id}"), *common)
    name = ("--source", source) if source else ("--vmid", str(vmid), "--disk-id", str(disk_id), "--clone")
    return disk_xml("--host", tm.gluster_host, "--volume", tm.volume, *name, *common)


def domain(name: str, disks: list[etree._Element], serial: Path) -> bytes:
    root = etree.fromstring(f"""<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>
      <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
      <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
      <controller type='scsi' index='0' model='virtio-scsi'/>
      <serial type='file'><source path='{serial}'/><target port='0'/></serial></devices></domain>""")
    devices = root.find("devices")
    for position, disk in enumerate(disks):
        devices.insert(1 + position, disk)
    return etree.tostring(root, pretty_print=True)


def snapshots(path: Path) -> list[str]:
    return [s["name"] for s in json.loads(qemu_img("info", "-U", "--output=json", str(path))).get("snapshots", [])]


def running_snapshots(domain: str, device: str) -> list[str]:
    """The internal snapshots the running QEMU sees on a disk (QMP query-block)."""
    reply = json.loads(virsh("qemu-monitor-command", domain, '{"execute": "query-block"}').stdout)
    for block in reply["return"]:
        if device in block.get("qdev", "").split("/"):
            return [s["name"] for s in block["inserted"]["image"].get("snapshots", [])]
    raise AssertionError(f"{domain} has no disk {device}")


def guest_write(domain: str, device: str, offset: int, length: int, pattern: int) -> None:
    """Write as the guest writes: through its disk device (the virtio backend), then flushed."""
    for command in (f"write -P {pattern:#x} {offset} {length}", "flush"):
        virsh("qemu-monitor-command", domain, "--hmp",
              f'qemu-io -d /machine/peripheral/{device}/virtio-backend "{command}"')


def settles_to(image: Path, disk: Path, within: float = 10) -> bool:
    """Whether `disk`, read through the FUSE mount, is `qemu-img compare`-identical to `image` once
    the mount has caught up with what QEMU wrote through libgfapi: the bytes reach the brick some ms
    after QEMU's flush, and the mount's view of the file's size lags up to ~2 s behind (gluster's
    md-cache and the kernel's attribute cache, 1 s each), measured on this machine."""
    deadline = time.monotonic() + within
    while True:
        done = subprocess.run(["qemu-img", "compare", "-U", "-T", "none", str(image), str(disk)],
                              capture_output=True, text=True)
        if "Images are identical" in done.stdout:
            return True
        if time.monotonic() > deadline:
            print(done.stdout, done.stderr)
            return False
        time.sleep(0.5)


def increment(doc: bytes, last: int) -> bytes:
    """The VM document of the backup after number `last` of a chain of increments (-1: its first)."""
    vm = etree.fromstring(doc)
    config = vm.find("BACKUPS/BACKUP_CONFIG")
    etree.SubElement(config, "MODE").text = "INCREMENT"
    etree.SubElement(config, "LAST_INCREMENT_ID").text = str(last)
    return etree.tostring(vm)


def node_bitmaps(domain: str, device: str) -> list[dict]:
    """The dirty bitmaps QEMU keeps for a disk (by its qdev id)."""
    blocks = json.loads(virsh("qemu-monitor-command", domain, '{"execute": "query-block"}').stdout)["return"]
    node = next(b["inserted"]["node-name"] for b in blocks if device in b.get("qdev", "").split("/"))
    nodes = json.loads(virsh("qemu-monitor-command", domain,
                             '{"execute": "query-named-block-nodes", "arguments": {"flat": true}}').stdout)["return"]
    return next(n.get("dirty-bitmaps", []) for n in nodes if n["node-name"] == node)

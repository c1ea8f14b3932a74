"""Disks and images that a VM's QEMU has just written through libgfapi, worked on through the mount at
once: the drivers must see what QEMU wrote, not the older size and pages the mount still keeps.

QEMU here is a real `qemu-system-x86_64` with the file as a drive opened through libgfapi
(`gluster://`), written through HMP's `qemu-io` and flushed. It is then killed rather than quit:
gluster 10.3 takes ~10 s to disconnect a libgfapi client (`glfs_fini`), which would hide the lag, while
releases after it disconnect at once, and a VM's disk is then worked on as soon as it is powered off.
What QEMU flushed is on the bricks before the kill. The results are read from the brick, the volume's
own bytes, which no client caches.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

import onedsim
from support.drivers import deploy, gluster_disk, imported
from support.images import MiB, qemu_img, reads_pattern
from support.labs import HOST, VOLUME, brick_path, volume_path


class GfapiQemu:
    """A QEMU holding one file of the test volume open through libgfapi, as a VM's disk."""

    def __init__(self, lab, path: Path, fmt: str, workdir: Path) -> None:
        self.socket, self.output, self.errors = workdir / "qmp.sock", workdir / "qemu.out", workdir / "qemu.err"
        # a gluster:// URI, as a drive: QEMU then resolves a clone's relative backing file
        drive = f"file=gluster://{HOST}/{VOLUME}/{volume_path(lab, path)},format={fmt},if=none,id=disk,cache=none"
        with self.output.open("wb") as out, self.errors.open("wb") as err:
            self.process = subprocess.Popen(
                ["qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none",
                 "-qmp", f"unix:{self.socket},server=on,wait=off", "-drive", drive], stdout=out, stderr=err)
        self.stream = self._connect()
        self._command("qmp_capabilities")

    def _connect(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"QEMU stopped: {self.errors.read_text()[-500:]}")
            sock = socket.socket(socket.AF_UNIX)
            try:
                sock.connect(str(self.socket))
            except OSError:
                sock.close()
                time.sleep(0.05)
                continue
            stream = sock.makefile("rw")
            stream.readline()                          # the greeting
            return stream
        raise AssertionError("QEMU's QMP socket did not come up")

    def _command(self, name: str, **arguments) -> dict:
        self.stream.write(json.dumps({"execute": name, "arguments": arguments}) + "\n")
        self.stream.flush()
        while True:
            reply = json.loads(self.stream.readline())
            if "error" in reply:
                raise AssertionError(f"QMP {name}: {reply['error']}")
            if "return" in reply:
                return reply["return"]

    def write(self, byte: int, offset: int, length: int) -> None:
        """What the guest writes to its disk, flushed to the bricks."""
        self._hmp(f'qemu-io disk "write -P {byte} {offset} {length}"')
        self._hmp('qemu-io disk "flush"')
        printed = self.output.read_text()                      # qemu-io prints on QEMU's stdout
        assert f"wrote {length}/{length} bytes at offset {offset}" in printed, printed + self.errors.read_text()[-1500:]

    def _hmp(self, line: str) -> None:
        self._command("human-monitor-command", **{"command-line": line})

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def qemu(lab, tmp_path):
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 is not installed")
    started = []

    def start(path: Path, fmt: str) -> GfapiQemu:
        started.append(GfapiQemu(lab, path, fmt, tmp_path))
        return started[-1]

    yield start
    for process in started:
        if process.process.poll() is None:
            process.kill()


def mount_reads(path: Path, fmt: str) -> None:
    """What the monitor, or any earlier action, does: the mount caches the file's size and pages."""
    qemu_img("info", "-U", "-f", fmt, str(path))
    path.read_bytes()


def cloned(tm, ds, sources_dir, vmid: int, fmt: str, lcm_state: int) -> tuple[str, Path]:
    """Disk 0 of VM `vmid`, cloned from a new image of `fmt`: (the image's SOURCE, the disk's file)."""
    source = imported(ds, sources_dir, f"after-qemu-{vmid}", fmt)[0]
    deploy(tm, vmid, gluster_disk(0, source, fmt), lcm_state=lcm_state)
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    return source, tm.real(vmid, 0)


def test_snapshot_right_after_qemu_grew_the_disk_keeps_what_it_wrote(tm, lab, ds, sources_dir, qemu, vm_ids):
    vmid = next(vm_ids)
    _, disk = cloned(tm, ds, sources_dir, vmid, "qcow2", lcm_state=51)             # DISK_SNAPSHOT_POWEROFF
    vm = qemu(disk, "qcow2")
    vm.write(0x5a, 0, 4 * MiB)
    mount_reads(disk, "qcow2")
    vm.write(0xa5, 20 * MiB, 8 * MiB)                                       # the qcow2 grows
    vm.kill()
    tm.ok("snap_create", tm.disk(vmid, 0), 0, vmid, 101)
    brick = str(brick_path(lab, disk))
    assert "No errors were found" in qemu_img("check", "-f", "qcow2", brick)
    assert reads_pattern(brick, 0x5a, 0, 4 * MiB)
    assert reads_pattern(brick, 0xa5, 20 * MiB, 8 * MiB)
    info = json.loads(qemu_img("info", "--output=json", brick))
    assert [s["name"] for s in info["snapshots"]] == ["one-snap-0"]
    tm.ok("delete", tm.disk(vmid, 0), vmid, 101)


def test_save_as_right_after_qemu_rewrote_a_raw_disk_holds_the_new_bytes(tm, lab, ds, sources_dir, qemu, vm_ids):
    vmid = next(vm_ids)
    source, disk = cloned(tm, ds, sources_dir, vmid, "raw", lcm_state=27)           # HOTPLUG_SAVEAS_POWEROFF
    vm = qemu(disk, "raw")
    mount_reads(disk, "raw")
    vm.write(0x77, MiB, MiB)                                                 # in place: the size stays
    vm.kill()
    saved = f"{os.path.dirname(source)}/{'ef' * 16}"
    tm.ok("cpds", tm.disk(vmid, 0), saved, -1, vmid, 101)
    assert reads_pattern(brick_path(lab, saved), 0x77, MiB, MiB, "raw")
    os.unlink(saved)
    tm.ok("delete", tm.disk(vmid, 0), vmid, 101)


def test_image_clone_right_after_qemu_grew_the_image_holds_what_it_wrote(lab, ds, sources_dir, qemu):
    source = imported(ds, sources_dir, "after-qemu-clone", "qcow2")[0]     # a persistent image, used by a VM
    image = Path(os.path.realpath(source))
    vm = qemu(image, "qcow2")
    mount_reads(image, "qcow2")
    vm.write(0x3c, 20 * MiB, 8 * MiB)
    vm.kill()
    copy, fmt = ds.ok("clone", onedsim.image(1, path=source, fmt="qcow2")).split()
    assert fmt == "qcow2"
    assert reads_pattern(brick_path(lab, copy), 0x3c, 20 * MiB, 8 * MiB)
    for done in (copy, source):
        ds.ok("rm", onedsim.image(0, source=done))

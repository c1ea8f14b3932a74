"""A VM's whole life as oned drives the TM, checked through libgfapi at the names core computes.

image -> deploy (clone as an overlay and as a full copy, ln, mkimage, mkswap, context) -> snapshot
create / revert / delete -> save-as (cpds) -> resize -> terminate (delete, mvds). After each stage
the gluster disks are opened through libgfapi at `GLUSTER_VOLUME/<vmid>/disk.<i>` (clone) and
`GLUSTER_VOLUME/<basename of SOURCE>` (persistent), as LibVirtDriverKVM.cc names them, and compared
with what the FUSE mount shows.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from one_gluster import libvirt, onedsim
from one_gluster.volume import Server
from conftest import HOST, VOLUME, deploy, gfapi_differences, gluster_disk, imported, qemu_io


def gluster_uri(name: str) -> str:
    return libvirt.uri(name, Server(HOST, 24007))


@pytest.mark.gfapi
def test_vm_lifecycle_through_libgfapi(tm, ds, sources_dir, tmp_path, vm_ids):
    base, _ = imported(ds, sources_dir, "life-base", "qcow2")          # non-persistent image
    persistent, _ = imported(ds, sources_dir, "life-pers", "qcow2")    # persistent image
    vmid = next(vm_ids)
    disks = [gluster_disk(0, base, "qcow2"), gluster_disk(1, persistent, "qcow2", clone=False),
             onedsim.volatile_disk(2, kind="fs", size_mb=32, fs="ext4"),
             onedsim.volatile_disk(3, kind="swap", size_mb=16),
             gluster_disk(5, base, "qcow2", extra={"QCOW2_STANDALONE": "YES"})]   # a full copy of the image
    deploy(tm, vmid, *disks, lcm_state=1)                               # PROLOG
    names = {0: libvirt.disk_name(VOLUME, vmid, 0, base, clone=True),
             1: libvirt.disk_name(VOLUME, vmid, 1, persistent, clone=False),
             5: libvirt.disk_name(VOLUME, vmid, 5, base, clone=True)}
    assert names == {0: f"{VOLUME}/{vmid}/disk.0", 1: f"{VOLUME}/{os.path.basename(persistent)}",
                     5: f"{VOLUME}/{vmid}/disk.5"}
    fuse = {0: tm.real(vmid, 0), 1: Path(os.path.realpath(persistent)), 5: tm.real(vmid, 5)}

    def check_gfapi(*extra: tuple[str, Path, str]) -> None:
        pairs = [(gluster_uri(names[i]), fuse[i], "qcow2") for i in names] + list(extra)
        assert gfapi_differences(pairs) == []

    # deploy: the prolog lines, then the VMM's context step
    tm.ok("clone", f"vm:{base}", tm.disk(vmid, 0), vmid, 101)
    tm.ok("ln", f"vm:{persistent}", tm.disk(vmid, 1), vmid, 101)
    tm.ok("mkimage", 32, "raw", tm.disk(vmid, 2), vmid, 100)
    tm.ok("mkswap", 16, tm.disk(vmid, 3), vmid, 100)
    context_sh = tmp_path / "context.sh"
    context_sh.write_text("ETH0_IP='10.0.0.2'\n")
    tm.ok("context", context_sh, tm.disk(vmid, 4), vmid, 100)
    tm.ok("clone", f"vm:{base}", tm.disk(vmid, 5), vmid, 101)
    assert sorted(os.listdir(tm.real(vmid))) == [f"disk.{i}" for i in range(6)]
    # the guest writes (through FUSE here, as QEMU would through libgfapi)
    for path in fuse.values():
        assert "wrote" in qemu_io(str(path), "write -P 0xaa 0 1M")
    check_gfapi()

    # snapshots while powered off: create 0, write, revert to 0, create 1, delete 0
    deploy(tm, vmid, *disks, lcm_state=51)                              # DISK_SNAPSHOT_POWEROFF
    for i in (0, 1):
        tm.ok("snap_create", tm.disk(vmid, i), 0, vmid, 101)
        assert "wrote" in qemu_io(str(fuse[i]), "write -P 0xbb 0 1M")
        tm.ok("snap_revert", tm.disk(vmid, i), 0, vmid, 101)
        assert "Pattern verification failed" not in qemu_io(str(fuse[i]), "read -P 0xaa 0 1M")
        tm.ok("snap_create", tm.disk(vmid, i), 1, vmid, 101)
        tm.ok("snap_delete", tm.disk(vmid, i), 0, vmid, 101)

    # save-as of the clone, then resize it (powered off)
    saved = f"{ds.base_path}/{'ef' * 16}"
    tm.ok("cpds", tm.disk(vmid, 0), saved, -1, vmid, 101)
    deploy(tm, vmid, *disks, lcm_state=63)                              # DISK_RESIZE_POWEROFF
    tm.ok("resize", tm.disk(vmid, 0), 64, vmid, 101)
    check_gfapi((gluster_uri(f"{VOLUME}/{os.path.basename(saved)}"), Path(saved), "qcow2"))
    assert "Pattern verification failed" not in qemu_io(saved, "read -P 0xaa 0 1M")

    # terminate: the epilog lines
    deploy(tm, vmid, *disks, lcm_state=11)                              # EPILOG
    tm.ok("mvds", tm.disk(vmid, 1), persistent, vmid, 101)
    for i in range(6):
        tm.ok("delete", tm.disk(vmid, i), vmid, 100 if i in (2, 3, 4) else 101)
    tm.ok("delete", f"{tm.host}:{tm.location}100/{vmid}", vmid, 100)
    assert not tm.real(vmid).exists()
    assert all(os.path.isfile(p) for p in (base, persistent, saved))    # images outlive the VM

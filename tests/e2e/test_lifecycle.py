"""A VM's whole life as oned drives the TM, checked through libgfapi at the names core computes.

image -> deploy (clone as an overlay and as a full copy, ln, mkimage, mkswap, context) -> snapshot
create / revert / delete -> save-as (cpds) -> resize -> terminate (delete, mvds). After each stage
the gluster disks are opened through libgfapi at `GLUSTER_VOLUME/<vmid>/disk.<i>` (clone) and
`GLUSTER_VOLUME/<basename of SOURCE>` (persistent), as LibVirtDriverKVM.cc names them, and compared
with what the FUSE mount shows.

On the volume as created; on a replica-3 volume tuned with gluster's option group for VM images
(`virt_lab`), which shards files: there the images are longer than a shard, and the guest writes into
their second shard; and on a volume owned by oneadmin (`owned_lab`), where the drivers, the guest's
writes and the libgfapi opens run as oneadmin, as on an OpenNebula front-end and its KVM nodes (QEMU
runs as oneadmin there).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from one_gluster import libvirt, onedsim
from one_gluster.volume import Server
from conftest import (HOST, SITES, VIRT, deploy, gfapi_differences, gfid, gluster_disk, imported,
                      qemu_io, reads_pattern, shard_owners, wait_for)

SIZE_MB = 160                   # two shards and a half of 64 MiB
DATA_MB = 72                    # so that even a qcow2 file of the image is longer than a shard
FAR = f"{SIZE_MB // 2 + 16}M"   # an offset in the image's data, in its second shard


def gluster_uri(name: str) -> str:
    return libvirt.uri(name, Server(HOST, 24007))


@pytest.mark.gfapi
@pytest.mark.parametrize("site", list(SITES), indirect=True)
def test_vm_lifecycle_through_libgfapi(site, vm_ids):
    lab, ds, tm, sources_dir = site
    volume, image_ds, system_ds = lab.volume, tm.image_ds, tm.system_ds
    base, _ = imported(ds, sources_dir, "life-base", "qcow2", SIZE_MB, DATA_MB)          # non-persistent image
    persistent, _ = imported(ds, sources_dir, "life-pers", "qcow2", SIZE_MB, DATA_MB)    # persistent image
    vmid = next(vm_ids)
    image = dict(size_mb=SIZE_MB, volume=volume, datastore_id=image_ds)
    disks = [gluster_disk(0, base, "qcow2", **image), gluster_disk(1, persistent, "qcow2", clone=False, **image),
             onedsim.volatile_disk(2, kind="fs", size_mb=32, fs="ext4", datastore_id=system_ds),
             onedsim.volatile_disk(3, kind="swap", size_mb=16, datastore_id=system_ds),
             gluster_disk(5, base, "qcow2", extra={"QCOW2_STANDALONE": "YES"}, **image)]   # a full copy
    deploy(tm, vmid, *disks, lcm_state=1)                               # PROLOG
    names = {0: libvirt.disk_name(volume, vmid, 0, base, clone=True),
             1: libvirt.disk_name(volume, vmid, 1, persistent, clone=False),
             5: libvirt.disk_name(volume, vmid, 5, base, clone=True)}
    assert names == {0: f"{volume}/{vmid}/disk.0", 1: f"{volume}/{os.path.basename(persistent)}",
                     5: f"{volume}/{vmid}/disk.5"}
    fuse = {0: tm.real(vmid, 0), 1: Path(os.path.realpath(persistent)), 5: tm.real(vmid, 5)}

    def guest(path, command: str) -> str:
        """What QEMU does for the guest (here through FUSE, as QEMU's user)."""
        return qemu_io(str(path), command, user=tm.user)

    def holds(path, pattern: str, offset: str) -> bool:
        return reads_pattern(path, pattern, offset, "1M", user=tm.user)

    def check_gfapi(*extra: tuple[str, Path, str]) -> None:
        pairs = [(gluster_uri(names[i]), fuse[i], "qcow2") for i in names] + list(extra)
        assert gfapi_differences(pairs, tm.user) == []

    # deploy: the prolog lines, then the VMM's context step
    tm.ok("clone", f"vm:{base}", tm.disk(vmid, 0), vmid, image_ds)
    tm.ok("ln", f"vm:{persistent}", tm.disk(vmid, 1), vmid, image_ds)
    tm.ok("mkimage", 32, "raw", tm.disk(vmid, 2), vmid, system_ds)
    tm.ok("mkswap", 16, tm.disk(vmid, 3), vmid, system_ds)
    context_sh = sources_dir / f"context.{vmid}.sh"     # oned's vms/<vmid>/context.sh, readable by the driver
    context_sh.write_text("ETH0_IP='10.0.0.2'\n")
    tm.ok("context", context_sh, tm.disk(vmid, 4), vmid, system_ds)
    tm.ok("clone", f"vm:{base}", tm.disk(vmid, 5), vmid, image_ds)
    assert sorted(os.listdir(tm.real(vmid))) == [f"disk.{i}" for i in range(6)]
    # the guest writes (through FUSE here, as QEMU would through libgfapi), at the start and further on
    for path in fuse.values():
        assert "wrote" in guest(path, "write -P 0xaa 0 1M") + guest(path, f"write -P 0xac {FAR} 1M")
    check_gfapi()

    # snapshots while powered off: create 0, write, revert to 0, create 1, delete 0
    deploy(tm, vmid, *disks, lcm_state=51)                              # DISK_SNAPSHOT_POWEROFF
    for i in (0, 1):
        tm.ok("snap_create", tm.disk(vmid, i), 0, vmid, image_ds)
        assert "wrote" in guest(fuse[i], "write -P 0xbb 0 1M") + guest(fuse[i], f"write -P 0xbb {FAR} 1M")
        tm.ok("snap_revert", tm.disk(vmid, i), 0, vmid, image_ds)
        assert holds(fuse[i], "0xaa", "0") and holds(fuse[i], "0xac", FAR)
        tm.ok("snap_create", tm.disk(vmid, i), 1, vmid, image_ds)
        tm.ok("snap_delete", tm.disk(vmid, i), 0, vmid, image_ds)

    # save-as of the clone, then resize it (powered off)
    saved = f"{ds.base_path}/{'ef' * 16}"
    tm.ok("cpds", tm.disk(vmid, 0), saved, -1, vmid, image_ds)
    deploy(tm, vmid, *disks, lcm_state=63)                              # DISK_RESIZE_POWEROFF
    tm.ok("resize", tm.disk(vmid, 0), SIZE_MB + 64, vmid, image_ds)
    check_gfapi((gluster_uri(f"{volume}/{os.path.basename(saved)}"), Path(saved), "qcow2"))
    assert holds(saved, "0xaa", "0") and holds(saved, "0xac", FAR)
    made = [tm.real(vmid), *(tm.real(vmid, i) for i in range(6)), base, persistent, saved]
    assert {os.stat(p).st_uid for p in made} == {os.geteuid() if tm.user is None else tm.user}
    kept = {gfid(lab, p) for p in (base, persistent, saved)}                  # the images
    vm_disks = {gfid(lab, str(tm.real(vmid, i))) for i in (0, 2, 3, 4, 5)}     # the VM's own files
    if volume == VIRT:
        assert kept <= shard_owners(lab) and vm_disks & shard_owners(lab)     # the full copy has shards

    # terminate: the epilog lines
    deploy(tm, vmid, *disks, lcm_state=11)                              # EPILOG
    tm.ok("mvds", tm.disk(vmid, 1), persistent, vmid, image_ds)
    for i in range(6):
        tm.ok("delete", tm.disk(vmid, i), vmid, system_ds if i in (2, 3, 4) else image_ds)
    tm.ok("delete", f"{tm.host}:{tm.location}{system_ds}/{vmid}", vmid, system_ds)
    assert not tm.real(vmid).exists()
    assert all(os.path.isfile(p) for p in (base, persistent, saved))    # images outlive the VM
    if volume == VIRT:                                             # the disks' shards go, in the background
        assert wait_for(lambda: not vm_disks & shard_owners(lab), 30) and kept <= shard_owners(lab)

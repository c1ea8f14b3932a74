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
from typing import NamedTuple

import pytest

import onedsim
from one_gluster.admin import lab as labmod
from one_gluster.core import kvm_disk
from one_gluster.core.volume import Server
from support.drivers import ImageDatastore, TransferManager, deploy, gluster_disk, imported
from support.images import gfapi_differences, qemu_io, reads_pattern
from support.labs import HOST, SITES, VIRT, gfid, shard_owners
from support.system import wait_for

SIZE_MB = 160                   # two shards and a half of 64 MiB
DATA_MB = 72                    # so that even a qcow2 file of the image is longer than a shard
FAR = f"{SIZE_MB // 2 + 16}M"   # an offset in the image's data, in its second shard


def gluster_uri(name: str) -> str:
    return kvm_disk.uri(name, Server(HOST, 24007))


class Life(NamedTuple):
    """A VM whose disks are made from two imported images, and how its guest and KVM see them."""

    lab: labmod.Lab
    ds: ImageDatastore
    tm: TransferManager
    vmid: int
    base: str                         # SOURCE of the non-persistent image
    persistent: str                   # SOURCE of the persistent image
    disks: list[dict]
    names: dict[int, str]             # disk id: the name KVM opens in the volume
    fuse: dict[int, Path]             # disk id: the same file on the FUSE mount

    def state(self, lcm_state: int) -> None:
        deploy(self.tm, self.vmid, *self.disks, lcm_state=lcm_state)

    def guest(self, path, command: str) -> str:
        """What QEMU does for the guest (here through FUSE, as QEMU's user)."""
        return qemu_io(str(path), command, user=self.tm.user)

    def holds(self, path, pattern: str, offset: str) -> bool:
        return reads_pattern(path, pattern, offset, "1M", user=self.tm.user)

    def check_gfapi(self, *extra: tuple[str, Path, str]) -> None:
        pairs = [(gluster_uri(self.names[i]), self.fuse[i], "qcow2") for i in self.names] + list(extra)
        assert gfapi_differences(pairs, self.tm.user) == []


def born(site, vmid: int) -> Life:
    """Two images imported, and the VM's disks as oned describes them at PROLOG, with core's names."""
    lab, ds, tm, sources_dir = site
    volume, image_ds, system_ds = lab.volume, tm.image_ds, tm.system_ds
    base, _ = imported(ds, sources_dir, "life-base", "qcow2", SIZE_MB, DATA_MB)          # non-persistent image
    persistent, _ = imported(ds, sources_dir, "life-pers", "qcow2", SIZE_MB, DATA_MB)    # persistent image
    image = dict(size_mb=SIZE_MB, volume=volume, datastore_id=image_ds)
    disks = [gluster_disk(0, base, "qcow2", **image), gluster_disk(1, persistent, "qcow2", clone=False, **image),
             onedsim.volatile_disk(2, kind="fs", size_mb=32, fs="ext4", datastore_id=system_ds),
             onedsim.volatile_disk(3, kind="swap", size_mb=16, datastore_id=system_ds),
             gluster_disk(5, base, "qcow2", extra={"QCOW2_STANDALONE": "YES"}, **image)]   # a full copy
    names = {0: kvm_disk.disk_name(volume, vmid, 0, base, clone=True),
             1: kvm_disk.disk_name(volume, vmid, 1, persistent, clone=False),
             5: kvm_disk.disk_name(volume, vmid, 5, base, clone=True)}
    assert names == {0: f"{volume}/{vmid}/disk.0", 1: f"{volume}/{os.path.basename(persistent)}",
                     5: f"{volume}/{vmid}/disk.5"}
    fuse = {0: tm.real(vmid, 0), 1: Path(os.path.realpath(persistent)), 5: tm.real(vmid, 5)}
    life = Life(lab, ds, tm, vmid, base, persistent, disks, names, fuse)
    life.state(1)                                                       # PROLOG
    return life


def deployed(life: Life, sources_dir: Path) -> None:
    """The prolog lines, then the VMM's context step; the guest writes (through FUSE here, as QEMU
    would through libgfapi), at the start and further on."""
    tm, vmid, image_ds, system_ds = life.tm, life.vmid, life.tm.image_ds, life.tm.system_ds
    tm.ok("clone", f"vm:{life.base}", tm.disk(vmid, 0), vmid, image_ds)
    tm.ok("ln", f"vm:{life.persistent}", tm.disk(vmid, 1), vmid, image_ds)
    tm.ok("mkimage", 32, "raw", tm.disk(vmid, 2), vmid, system_ds)
    tm.ok("mkswap", 16, tm.disk(vmid, 3), vmid, system_ds)
    context_sh = sources_dir / f"context.{vmid}.sh"     # oned's vms/<vmid>/context.sh, readable by the driver
    context_sh.write_text("ETH0_IP='10.0.0.2'\n")
    tm.ok("context", context_sh, tm.disk(vmid, 4), vmid, system_ds)
    tm.ok("clone", f"vm:{life.base}", tm.disk(vmid, 5), vmid, image_ds)
    assert sorted(os.listdir(tm.real(vmid))) == [f"disk.{i}" for i in range(6)]
    for path in life.fuse.values():
        assert "wrote" in life.guest(path, "write -P 0xaa 0 1M") + life.guest(path, f"write -P 0xac {FAR} 1M")
    life.check_gfapi()


def snapshotted(life: Life) -> None:
    """Snapshots while powered off: create 0, write, revert to 0, create 1, delete 0."""
    tm, vmid, image_ds = life.tm, life.vmid, life.tm.image_ds
    life.state(51)                                                      # DISK_SNAPSHOT_POWEROFF
    for i in (0, 1):
        tm.ok("snap_create", tm.disk(vmid, i), 0, vmid, image_ds)
        assert "wrote" in life.guest(life.fuse[i], "write -P 0xbb 0 1M") + life.guest(life.fuse[i],
                                                                                      f"write -P 0xbb {FAR} 1M")
        tm.ok("snap_revert", tm.disk(vmid, i), 0, vmid, image_ds)
        assert life.holds(life.fuse[i], "0xaa", "0") and life.holds(life.fuse[i], "0xac", FAR)
        tm.ok("snap_create", tm.disk(vmid, i), 1, vmid, image_ds)
        tm.ok("snap_delete", tm.disk(vmid, i), 0, vmid, image_ds)


def saved_and_resized(life: Life) -> str:
    """Save-as of the clone, then resize it (powered off); every file belongs to the drivers' user.
    Returns the saved image's SOURCE."""
    tm, vmid, image_ds = life.tm, life.vmid, life.tm.image_ds
    saved = f"{life.ds.base_path}/{'ef' * 16}"
    tm.ok("cpds", tm.disk(vmid, 0), saved, -1, vmid, image_ds)
    life.state(63)                                                      # DISK_RESIZE_POWEROFF
    tm.ok("resize", tm.disk(vmid, 0), SIZE_MB + 64, vmid, image_ds)
    life.check_gfapi((gluster_uri(f"{life.lab.volume}/{os.path.basename(saved)}"), Path(saved), "qcow2"))
    assert life.holds(saved, "0xaa", "0") and life.holds(saved, "0xac", FAR)
    made = [tm.real(vmid), *(tm.real(vmid, i) for i in range(6)), life.base, life.persistent, saved]
    assert {os.stat(p).st_uid for p in made} == {os.geteuid() if tm.user is None else tm.user}
    return saved


def terminated(life: Life, saved: str) -> None:
    """The epilog lines: the VM's files go, the images outlive it; on the sharded volume, the disks'
    shards go too, in the background."""
    tm, vmid, lab, image_ds, system_ds = life.tm, life.vmid, life.lab, life.tm.image_ds, life.tm.system_ds
    kept = {gfid(lab, p) for p in (life.base, life.persistent, saved)}        # the images
    vm_disks = {gfid(lab, str(tm.real(vmid, i))) for i in (0, 2, 3, 4, 5)}     # the VM's own files
    if lab.volume == VIRT:
        assert kept <= shard_owners(lab) and vm_disks & shard_owners(lab)     # the full copy has shards
    life.state(11)                                                      # EPILOG
    tm.ok("mvds", tm.disk(vmid, 1), life.persistent, vmid, image_ds)
    for i in range(6):
        tm.ok("delete", tm.disk(vmid, i), vmid, system_ds if i in (2, 3, 4) else image_ds)
    tm.ok("delete", f"{tm.host}:{tm.location}{system_ds}/{vmid}", vmid, system_ds)
    assert not tm.real(vmid).exists()
    assert all(os.path.isfile(p) for p in (life.base, life.persistent, saved))    # images outlive the VM
    if lab.volume == VIRT:
        assert wait_for(lambda: not vm_disks & shard_owners(lab), 30) and kept <= shard_owners(lab)


@pytest.mark.gfapi
@pytest.mark.parametrize("site", [pytest.param(name, marks=[] if name == "replica-3-virt" else [pytest.mark.extended])
                                  for name in SITES], indirect=True)     # the others: `-m extended` (~35 s each)
def test_vm_lifecycle_through_libgfapi(site, vm_ids):
    life = born(site, next(vm_ids))
    deployed(life, site[3])
    snapshotted(life)
    saved = saved_and_resized(life)
    terminated(life, saved)

"""Both modes use the same files at the same names, so a datastore switches between DISK_TYPE=GLUSTER and
DISK_TYPE=FILE without copying: the disks the TM makes for one mode (a clone's qcow2 overlay, a
persistent disk's link to its image, a volatile disk) open as the other mode's <disk> names them.
GLUSTER: `gluster://HOST/GLUSTER_VOLUME/<vmid>/disk.<i>` or `/<basename of SOURCE>`, through libgfapi;
FILE: `DATASTORE_LOCATION/<system ds>/<vmid>/disk.<i>` on the FUSE mount (a link dereferenced, as
vmm/kvm/deploy does). Each pair must read the same, backing chains included."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import onedsim
from one_gluster.core import kvm_disk
from one_gluster.core.volume import Server
from support.drivers import deploy, gluster_disk, imported
from support.images import gfapi_differences, qemu_img
from support.labs import HOST


def made_under(mode: str, ds, tm, sources_dir: Path, vmid: int) -> dict[int, tuple[str, Path, str]]:
    """A VM's disks made by the TM for an image datastore of DISK_TYPE `mode`: a clone (an overlay), a
    persistent disk (a link to its image) and a volatile disk; each as the other mode names it:
    (gluster:// URI, FUSE file, format)."""
    volume, image_ds, system_ds = tm.volume, tm.image_ds, tm.system_ds
    base, _ = imported(ds, sources_dir, f"modes-base-{mode}", "qcow2")
    persistent, _ = imported(ds, sources_dir, f"modes-pers-{mode}", "qcow2")
    image = dict(volume=volume, datastore_id=image_ds, disk_type=mode)
    disks = [gluster_disk(0, base, "qcow2", **image), gluster_disk(1, persistent, "qcow2", clone=False, **image),
             onedsim.volatile_disk(2, kind="fs", size_mb=32, fs="ext4", datastore_id=system_ds)]
    deploy(tm, vmid, *disks, lcm_state=1)                              # PROLOG
    tm.ok("clone", f"vm:{base}", tm.disk(vmid, 0), vmid, image_ds)
    tm.ok("ln", f"vm:{persistent}", tm.disk(vmid, 1), vmid, image_ds)
    tm.ok("mkimage", 32, "raw", tm.disk(vmid, 2), vmid, system_ds)
    files = {i: Path(os.path.realpath(f"{tm.location}{system_ds}/{vmid}/disk.{i}")) for i in range(3)}
    assert files[1] == Path(os.path.realpath(persistent))             # the link leads to the image itself
    chain = json.loads(qemu_img("info", "-U", "--backing-chain", "--output=json", str(files[0])))
    assert [Path(layer["filename"]).name for layer in chain] == ["disk.0", os.path.basename(base)]
    names = {0: kvm_disk.disk_name(volume, vmid, 0, base, clone=True),
             1: kvm_disk.disk_name(volume, vmid, 1, persistent, clone=False),
             2: f"{volume}/{vmid}/disk.2"}
    return {i: (kvm_disk.uri(names[i], Server(HOST, 24007)), files[i], "raw" if i == 2 else "qcow2")
            for i in range(3)}


@pytest.mark.gfapi
def test_a_disk_made_under_one_mode_opens_under_the_other(ds, tm, sources_dir, vm_ids):
    """Every disk made for FILE opens through libgfapi at GLUSTER's name, and every disk made for GLUSTER
    opens as FILE's file: each pair reads the same, the overlays through their backing files (the
    libgfapi opens run side by side: ~10 s each to disconnect)."""
    vmids = {mode: next(vm_ids) for mode in ("FILE", "GLUSTER")}
    pairs = [pair for mode, vmid in vmids.items() for pair in made_under(mode, ds, tm, sources_dir, vmid).values()]
    assert gfapi_differences(pairs) == []
    for vmid in vmids.values():
        tm.ok("delete", f"{tm.host}:{tm.location}{tm.system_ds}/{vmid}", vmid, tm.system_ds)

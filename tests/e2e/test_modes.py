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


@pytest.mark.gfapi
@pytest.mark.parametrize("made_as", ["FILE", "GLUSTER"])
def test_a_disk_made_under_one_mode_opens_under_the_other(lab, ds, tm, sources_dir, vm_ids, made_as):
    volume, image_ds, system_ds = lab.volume, tm.image_ds, tm.system_ds
    base, _ = imported(ds, sources_dir, f"modes-base-{made_as}", "qcow2")
    persistent, _ = imported(ds, sources_dir, f"modes-pers-{made_as}", "qcow2")
    vmid = next(vm_ids)
    image = dict(volume=volume, datastore_id=image_ds, disk_type=made_as)
    disks = [gluster_disk(0, base, "qcow2", **image), gluster_disk(1, persistent, "qcow2", clone=False, **image),
             onedsim.volatile_disk(2, kind="fs", size_mb=32, fs="ext4", datastore_id=system_ds)]
    deploy(tm, vmid, *disks, lcm_state=1)                              # PROLOG
    tm.ok("clone", f"vm:{base}", tm.disk(vmid, 0), vmid, image_ds)
    tm.ok("ln", f"vm:{persistent}", tm.disk(vmid, 1), vmid, image_ds)
    tm.ok("mkimage", 32, "raw", tm.disk(vmid, 2), vmid, system_ds)

    files = {i: Path(os.path.realpath(f"{tm.location}{system_ds}/{vmid}/disk.{i}")) for i in range(3)}
    names = {0: kvm_disk.disk_name(volume, vmid, 0, base, clone=True),
             1: kvm_disk.disk_name(volume, vmid, 1, persistent, clone=False),
             2: f"{volume}/{vmid}/disk.2"}
    assert files[1] == Path(os.path.realpath(persistent))             # the link leads to the image itself
    uri = {i: kvm_disk.uri(name, Server(HOST, 24007)) for i, name in names.items()}
    assert gfapi_differences([(uri[i], files[i], "raw" if i == 2 else "qcow2") for i in range(3)]) == []
    for opened in (str(files[0]), uri[0]):                          # the overlay's backing file, either way
        chain = json.loads(qemu_img("info", "-U", "--backing-chain", "--output=json", opened))
        assert [Path(layer["filename"]).name for layer in chain] == ["disk.0", os.path.basename(base)]

    deploy(tm, vmid, *disks, lcm_state=11)                             # EPILOG
    tm.ok("delete", f"{tm.host}:{tm.location}{system_ds}/{vmid}", vmid, system_ds)

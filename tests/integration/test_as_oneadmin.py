"""The drivers as they run on a front-end: as oneadmin (uid and gid 9869, no other group), on a volume
whose files belong to oneadmin (`owned_lab`). The whole VM lifecycle as oneadmin is in
tests/e2e/test_lifecycle.py; here are the image datastore's other actions, and the message an admin
gets where something on the volume does not belong to oneadmin."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import onedsim
from support.drivers import deploy
from support.images import make_raw, qemu_img
from support.labs import ONEADMIN

MiB = 1 << 20


def info(path) -> dict:
    return json.loads(qemu_img("info", "-U", "--output=json", str(path)))


def test_image_datastore_actions_as_oneadmin(owned_ds, owned_home):
    raw = make_raw(owned_home.sources / "admin.raw", 32 * MiB, {0: b"\x5a" * MiB, 20 * MiB: b"\xa5" * MiB})
    assert owned_ds.ok("stat", onedsim.image(0, path=str(raw))).strip() == "32"
    converted, fmt = owned_ds.ok("cp", onedsim.image(0, path=str(raw)), ds_template={"DRIVER": "qcow2"}).split()
    assert fmt == "qcow2" and info(converted)["format"] == "qcow2"
    made = owned_ds.ok("mkfs", onedsim.image(1, fmt="raw", fs="ext4", size_mb=16)).strip()
    with open(made, "rb") as f:
        f.seek(1080)
        assert f.read(2) == b"\x53\xef"                           # an ext4 superblock, made by mkfs as oneadmin
    clone, _ = owned_ds.ok("clone", onedsim.image(2, path=converted)).split()
    assert qemu_img("compare", "-U", str(raw), clone).startswith("Images are identical")
    images = [converted, made, clone]
    assert {os.stat(p).st_uid for p in images} == {ONEADMIN}
    usage = dict(line.split("=") for line in owned_ds.ok("monitor").split())
    assert int(usage["TOTAL_MB"]) > 0 and int(usage["USED_MB"]) + int(usage["FREE_MB"]) <= int(usage["TOTAL_MB"])
    for source in images:
        owned_ds.ok("rm", onedsim.image(3, source=source))
    assert not any(os.path.exists(p) for p in images)


def test_a_directory_oneadmin_cannot_write_is_named_with_its_owner(owned_lab, owned_ds, owned_tm, vm_ids):
    mount = Path(owned_lab.mount_point)
    closed = mount / "root-only"          # made by root, as an admin's `mkdir` on the mount would be
    closed.mkdir(mode=0o755)
    source = make_raw(Path(owned_ds.template["SAFE_DIRS"]) / "closed.raw", 4 * MiB, {0: b"\x01" * MiB})
    try:
        done = dataclasses.replace(owned_ds, base_path=str(closed)).call("cp", onedsim.image(0, path=str(source)))
        assert done.returncode == 1 and len(done.plain_errors) == 1
        assert done.plain_errors[0] == (
            f"Permission denied: {closed} (the driver runs as uid {ONEADMIN} gid {ONEADMIN}; {closed} belongs to uid 0 "
            f"gid 0, mode 0755; {mount} belongs to uid {ONEADMIN} gid {ONEADMIN}, mode 0755): the volume's files must "
            "belong to oneadmin; `one-gluster prepare` sets its storage.owner-uid/gid to oneadmin's ids")
        assert os.listdir(closed) == []
        image = closed / "img"                  # oneadmin's image, in that directory: rm cannot remove it
        image.write_bytes(b"\x03" * MiB)
        os.chown(image, ONEADMIN, ONEADMIN)
        done = dataclasses.replace(owned_ds, base_path=str(closed)).call("rm", onedsim.image(0, source=str(image)))
        assert done.returncode == 1 and done.plain_errors == [
            f"The datastore action rm failed: Permission denied: {image} (the driver runs as uid {ONEADMIN} gid "
            f"{ONEADMIN}; {image} belongs to uid {ONEADMIN} gid {ONEADMIN}, mode 0644; {closed} belongs to uid 0 "
            "gid 0, mode 0755)"]
        assert image.read_bytes() == b"\x03" * MiB
        image.unlink()

        vmid = next(vm_ids)                    # a VM directory left by root: the TM says the same
        deploy(owned_tm, vmid, onedsim.volatile_disk(0, kind="fs", size_mb=8, datastore_id=owned_tm.system_ds))
        vm_dir = owned_tm.real(vmid)
        vm_dir.mkdir(mode=0o755)
        done = owned_tm.call("mkimage", 8, "raw", owned_tm.disk(vmid, 0), vmid, owned_tm.system_ds)
        assert done.returncode == 1 and len(done.plain_errors) == 1
        assert done.plain_errors[0].startswith(f"Permission denied: {vm_dir} (the driver runs as uid {ONEADMIN} ")
        assert os.listdir(vm_dir) == []
        vm_dir.rmdir()

        unreadable = make_raw(source.with_name("unreadable.raw"), MiB, {0: b"\x02" * MiB})
        unreadable.chmod(0o600)                # an image to import that oneadmin may not read
        done = owned_ds.call("cp", onedsim.image(0, path=str(unreadable)))
        assert done.returncode == 1 and done.plain_errors == [
            f"Image file {unreadable} is not readable by the driver's user (the driver runs as uid {ONEADMIN} "
            f"gid {ONEADMIN}; {unreadable} belongs to uid 0 gid 0, mode 0600; {unreadable.parent} belongs to uid 0 "
            "gid 0, mode 0755)"]
    finally:
        closed.rmdir()

"""TM clone, ln, mkimage, mkswap, context, resize, cpds, mv, mvds, delete against the real volume.

Each action is run as oned runs it (argv only); the disk attributes it reads through pyone come from
the loopback stand-in for oned's XML-RPC API (`oned` fixture), serving documents in oned's format.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import onedsim
from one_gluster.core import qemu, snapshot_store
from support.drivers import deploy, gluster_disk, imported
from support.images import allocated, qemu_img
from support.labs import HOST, VOLUME

MiB = 1 << 20


@pytest.fixture(scope="module")
def qcow2_source(ds, sources_dir):
    return imported(ds, sources_dir, "tm-base", "qcow2")


@pytest.fixture(scope="module")
def raw_source(ds, sources_dir):
    return imported(ds, sources_dir, "tm-raw", "raw")


def info(path: Path) -> dict:
    import json
    return json.loads(qemu_img("info", "--output=json", "-U", str(path)))


def first_mib(path, tmp_path: Path) -> bytes:
    """The first MiB a guest reads from the image (qcow2 layers resolved)."""
    out = tmp_path / f"{os.path.basename(path)}.raw"
    qemu_img("convert", "-U", "-O", "raw", str(path), str(out))
    with open(out, "rb") as f:
        return f.read(MiB)


def same_content(a: Path, b: Path) -> bool:
    return subprocess.run(["qemu-img", "compare", "-U", str(a), str(b)], capture_output=True).returncode == 0


def test_clone_is_a_relative_qcow2_overlay_named_as_core_names_it(tm, qcow2_source, vm_ids):
    source, _ = qcow2_source
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "qcow2"))
    done = tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    assert done.stdout == ""
    disk = tm.real(vmid, 0)
    data = info(disk)
    assert data["format"] == "qcow2"
    assert data["backing-filename"] == "../" + os.path.basename(source)      # inside the volume
    assert data["virtual-size"] == 32 * MiB
    assert disk.stat().st_size % 512 == 0                                     # the 512-byte rule
    assert same_content(disk, Path(os.path.realpath(source)))
    # oned may retry: a finished clone is accepted as it is
    before = disk.stat().st_mtime_ns
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    assert disk.stat().st_mtime_ns == before
    assert not [n for n in os.listdir(disk.parent) if n.startswith(".")]     # no staging leftovers


def test_clone_grows_to_the_disk_size(tm, qcow2_source, vm_ids, tmp_path):
    source, head = qcow2_source
    vmid = next(vm_ids)
    deploy(tm, vmid, onedsim.image_disk(0, image_id=0, source=source, fmt="qcow2", size_mb=96, original_size_mb=32,
                                        volume=VOLUME, hosts=HOST))
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    disk = tm.real(vmid, 0)
    assert info(disk)["virtual-size"] == 96 * MiB
    assert info(disk)["backing-filename"] == "../" + os.path.basename(source)
    assert first_mib(disk, tmp_path) == head


def test_raw_clone_grows_to_the_disk_size_and_resize_only_grows(tm, raw_source, vm_ids):
    source, _ = raw_source
    vmid = next(vm_ids)
    deploy(tm, vmid, onedsim.image_disk(0, image_id=0, source=source, fmt="raw", size_mb=48, original_size_mb=32,
                                        volume=VOLUME, hosts=HOST), lcm_state=63)   # DISK_RESIZE_POWEROFF
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    disk = tm.real(vmid, 0)
    assert disk.stat().st_size == 48 * MiB and info(disk)["format"] == "raw"
    assert disk.read_bytes()[:32 * MiB] == Path(source).read_bytes()
    assert allocated(disk) < 8 * MiB                                          # the new 16 MiB are a hole
    tm.ok("resize", tm.disk(vmid, 0), 64, vmid, 101)
    assert disk.stat().st_size == 64 * MiB
    refused = tm.call("resize", tm.disk(vmid, 0), 40, vmid, 101)
    assert refused.returncode != 0 and "Cannot shrink" in refused.plain_errors[-1]
    assert disk.stat().st_size == 64 * MiB
    assert disk.read_bytes()[:32 * MiB] == Path(source).read_bytes()


def test_standalone_clone_is_a_full_sparse_copy(tm, qcow2_source, vm_ids):
    source, _ = qcow2_source
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "qcow2", extra={"QCOW2_STANDALONE": "YES"}))
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    disk = tm.real(vmid, 0)
    data = info(disk)
    assert data["format"] == "qcow2" and "backing-filename" not in data
    assert same_content(disk, Path(os.path.realpath(source)))
    assert allocated(disk) < 8 * MiB                                          # 2 MiB of data, not 32
    assert disk.stat().st_size % 512 == 0                                      # libgfapi can open it


def test_standalone_clone_of_an_image_with_snapshots_leaves_them_behind(tm, ds, sources_dir, vm_ids):
    source, _ = imported(ds, sources_dir, "tm-snapped", "qcow2")
    qemu.snapshot(source, "-c", snapshot_store.tag(0))                         # an image snapshot (DS side)
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "qcow2", extra={"QCOW2_STANDALONE": "YES"}))
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    disk = tm.real(vmid, 0)
    data = info(disk)
    assert data["format"] == "qcow2" and "backing-filename" not in data and "snapshots" not in data
    assert same_content(disk, Path(os.path.realpath(source)))
    assert [s["name"] for s in info(Path(source))["snapshots"]] == ["one-snap-0"]     # the image keeps its own


def test_raw_clone_is_a_sparse_raw_copy(tm, raw_source, vm_ids):
    source, _ = raw_source
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "raw"))
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    disk = tm.real(vmid, 0)
    assert disk.read_bytes() == Path(source).read_bytes()
    assert allocated(disk) < 8 * MiB


def test_ln_links_the_image_in_place(tm, qcow2_source, vm_ids):
    source, _ = qcow2_source
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "qcow2", clone=False))
    tm.ok("ln", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    link = tm.real(vmid, 0)
    assert os.readlink(link) == "../" + os.path.basename(source)
    assert os.path.realpath(link) == os.path.realpath(source)
    tm.ok("ln", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)                  # again: still fine
    tm.ok("delete", tm.disk(vmid, 0), vmid, 101)
    assert not os.path.lexists(link) and os.path.isfile(source)              # the link went, not the image


def test_mkimage_and_mkswap_make_volatile_disks(tm, vm_ids):
    vmid = next(vm_ids)
    deploy(tm, vmid, onedsim.volatile_disk(1, kind="fs", size_mb=64, fs="ext4"),
           onedsim.volatile_disk(2, kind="swap", size_mb=32),
           onedsim.volatile_disk(3, kind="fs", size_mb=16, fmt="qcow2"))
    tm.ok("mkimage", 64, "raw", tm.disk(vmid, 1), vmid, 100)
    tm.ok("mkswap", 32, tm.disk(vmid, 2), vmid, 100)
    tm.ok("mkimage", 16, "qcow2", tm.disk(vmid, 3), vmid, 100)
    ext4 = tm.real(vmid, 1).read_bytes()
    assert len(ext4) == 64 * MiB and ext4[0x438:0x43A] == b"\x53\xef"         # ext4 superblock magic
    swap = tm.real(vmid, 2).read_bytes()
    assert len(swap) == 32 * MiB and swap[4086:4096] == b"SWAPSPACE2"
    assert info(tm.real(vmid, 3))["format"] == "qcow2" and tm.real(vmid, 3).stat().st_size % 512 == 0
    tm.ok("mkimage", 32, "swap", tm.disk(vmid, 2), vmid, 100)                # a retry: already there
    bad = tm.call("mkimage", 16, "vmdk", tm.disk(vmid, 4), vmid, 100)
    assert bad.returncode != 0 and "format" in bad.plain_errors[-1]


def test_context_builds_an_iso_labelled_context(tm, tmp_path, vm_ids):
    vmid = next(vm_ids)
    context_sh = tmp_path / "context.sh"
    context_sh.write_text("HOSTNAME='vm'\n")
    extra = tmp_path / "init.sh"
    extra.write_text("#!/bin/sh\necho hi\n")
    tm.ok("context", context_sh, f"{extra}:start.sh", tm.disk(vmid, 4), vmid, 100)
    iso = tm.real(vmid, 4)
    data = iso.read_bytes()
    assert data[32769:32774] == b"CD001" and data[32808:32840].strip() == b"CONTEXT"
    out = tmp_path / "out"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(out)],
                   check=True, capture_output=True)
    assert (out / "context.sh").read_text() == "HOSTNAME='vm'\n"
    assert (out / "start.sh").read_text() == "#!/bin/sh\necho hi\n"
    missing = tm.call("context", tmp_path / "nope.sh", tm.disk(vmid, 5), vmid, 100)
    assert missing.returncode != 0 and "nope.sh does not exist" in missing.plain_errors[-1]
    assert not tm.real(vmid, 5).exists()


def test_resize_and_cpds(tm, qcow2_source, tmp_path, vm_ids, ds):
    source, head = qcow2_source
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "qcow2"), lcm_state=63)       # DISK_RESIZE_POWEROFF
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    tm.ok("resize", tm.disk(vmid, 0), 64, vmid, 101)
    assert info(tm.real(vmid, 0))["virtual-size"] == 64 * MiB
    saved = f"{ds.base_path}/{'ab' * 16}"
    tm.ok("cpds", tm.disk(vmid, 0), saved, -1, vmid, 101)
    data = info(Path(saved))
    assert data["format"] == "qcow2" and "backing-filename" not in data        # flattened: a standalone image
    assert data["virtual-size"] == 64 * MiB and Path(saved).stat().st_size % 512 == 0
    assert first_mib(saved, tmp_path) == head


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_cpds_of_a_standalone_disk_is_a_sparse_copy(tm, ds, raw_source, qcow2_source, vm_ids, fmt):
    source, _ = raw_source if fmt == "raw" else qcow2_source
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, fmt, extra={"QCOW2_STANDALONE": "YES"}),
           lcm_state=27)                                                      # HOTPLUG_SAVEAS_POWEROFF
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    saved = f"{ds.base_path}/saved-{fmt}"
    tm.ok("cpds", tm.disk(vmid, 0), saved, -1, vmid, 101)
    assert Path(saved).read_bytes() == tm.real(vmid, 0).read_bytes()
    assert allocated(Path(saved)) < 8 * MiB                                   # 2 MiB of data, not 32
    tm.ok("snap_create", tm.disk(vmid, 0), 0, vmid, 101)                      # the disk now has a snapshot
    again = saved + "-again"
    tm.ok("cpds", tm.disk(vmid, 0), again, -1, vmid, 101)
    assert "snapshots" not in info(Path(again)) and same_content(Path(again), tm.real(vmid, 0))


def test_mv_moves_nothing_on_shared_storage(tm, qcow2_source, vm_ids):
    source, _ = qcow2_source
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "qcow2"))
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    before = tm.real(vmid, 0).read_bytes()
    other = tm.disk(vmid, 0).replace("127.0.0.1:", "127.0.0.2:")
    tm.ok("mv", tm.disk(vmid, 0), other, vmid, 101)
    tm.ok("mv", tm.disk(vmid, 0).rsplit("/", 1)[0], other.rsplit("/", 1)[0], vmid, 100)
    tm.ok("mvds", tm.disk(vmid, 0), source, vmid, 101)
    assert tm.real(vmid, 0).read_bytes() == before


def test_mv_of_a_vm_directory_between_system_datastores(tm, lab, qcow2_source, vm_ids):
    """Cold migration to another system datastore: where both are the same directory of the volume
    (103 a symlink, as image datastores are linked) nothing moves; into another directory of the same
    mount (104) the directory is renamed; never a directory that is not the VM's."""
    source, _ = qcow2_source
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "qcow2"))
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    before = tm.real(vmid, 0).read_bytes()
    location = Path(tm.location)
    (location / "103").symlink_to("100")
    (Path(lab.mount_point) / "sys104").mkdir()
    (location / "104").symlink_to(Path(lab.mount_point) / "sys104")
    try:
        here, linked = f"{tm.host}:{tm.location}/100/{vmid}", f"{tm.host}:{tm.location}/103/{vmid}"
        done = tm.ok("mv", here, linked, vmid, 103)
        assert "nothing moves" in done.stderr and tm.real(vmid, 0).read_bytes() == before
        for src, dst in ((f"{tm.host}:{tm.location}/100", f"{tm.host}:{tm.location}/104/{vmid}"),
                         (f"{tm.host}:{tm.location}/100/{vmid + 1}", f"{tm.host}:{tm.location}/104/{vmid}")):
            refused = tm.call("mv", src, dst, vmid, 104)
            assert refused.returncode == 1 and refused.plain_errors == [
                f"Refusing {src.split(':', 1)[1].replace('//', '/')}: it is not the directory of VM {vmid} "
                f"(.../<datastore id>/{vmid})"]
        assert tm.real(vmid, 0).read_bytes() == before and not (location / "104" / str(vmid)).exists()
        elsewhere = f"{tm.host}:{tm.location}/104/{vmid}"
        tm.ok("mv", here, elsewhere, vmid, 104)
        assert not tm.real(vmid).exists() and (location / "104" / str(vmid) / "disk.0").read_bytes() == before
        tm.ok("mv", here, elsewhere, vmid, 104)                                   # a retry: already moved
        tm.ok("mv", elsewhere, here, vmid, 100)
        assert tm.real(vmid, 0).read_bytes() == before
    finally:
        for ds_id in ("103", "104"):
            (location / ds_id).unlink()
        (Path(lab.mount_point) / "sys104").rmdir()


def test_delete_stays_inside_the_vm_directory(tm, qcow2_source, vm_ids):
    source, _ = qcow2_source
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "qcow2"))
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    refused = tm.call("delete", f"{tm.host}:{tm.location}/100", vmid, 100)
    assert refused.returncode != 0 and refused.plain_errors == [
        f"Refusing {tm.location}100: it is not the directory of VM {vmid} (.../<datastore id>/{vmid})"]
    refused = tm.call("delete", f"{tm.host}:{source}", vmid, 101)
    assert refused.returncode != 0 and os.path.isfile(source)
    tm.ok("delete", tm.disk(vmid, 0), vmid, 101)
    assert not tm.real(vmid, 0).exists()
    tm.ok("delete", tm.disk(vmid, 0), vmid, 101)                             # already gone: fine
    vm_dir = f"{tm.host}:{tm.location}/100/{vmid}"
    tm.ok("delete", vm_dir, vmid, 100)
    assert not tm.real(vmid).exists() and os.path.isfile(source)

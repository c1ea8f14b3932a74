"""A real libvirtd runs a VM whose disks are the gluster network disks `one-gluster disk-xml` emits for
a TM-made qcow2 clone, a persistent disk and a raw clone; the guest's firmware boots from the first
through libgfapi. Each test then runs one scenario of live TM actions on that running VM, through
libvirt: snapshots (snap_create_live, snap_delete at DISK_SNAPSHOT_DELETE), save-as (cpds) of the disk
and of a snapshot, a raw disk's snapshot and save-as, a live full backup, a chain of live incremental
backups (prebackup_live/postbackup_live), which goes on with prebackup once the VM is powered off.
On the volume as created, and on the replica-3 volume tuned with gluster's virt group (sharded, strict
O_DIRECT), as operators run theirs. The VM is shared by the module's tests of one volume and they run
in order; each checks its own scenario.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest
from lxml import etree

import onedsim
from one_gluster.core import virsh_output
from support.domains import (BANNER, BOOT_CODE, core_disk, domain, guest_write, increment, node_bitmaps,
                             running_snapshots, settles_to, snapshots, virsh)
from support.drivers import ImageDatastore, TransferManager, deploy, gluster_disk, imported
from support.images import allocated, bitmaps, held_extents, make_raw, qemu_img, qemu_io, restored
from support.labs import SITES
from support.system import wait_for

MiB = 1 << 20


class Guest(NamedTuple):
    """The running VM the scenarios act on, and what it was made from."""

    mode: str                         # the image datastore's DISK_TYPE: GLUSTER or FILE
    name: str
    vmid: int
    disks: list[dict]                 # its DISKs as oned describes them
    ds: ImageDatastore
    tm: TransferManager
    sources: Path
    work: Path                        # a directory QEMU can reach, outside the volume

    def state(self, lcm_state: int) -> None:
        """oned moves the VM to `lcm_state` before it calls the action."""
        deploy(self.tm, self.vmid, *self.disks, lcm_state=lcm_state, deploy_id=self.name)

    def backup_args(self) -> tuple:
        system_ds = self.tm.system_ds
        return (f"{self.tm.host}:{self.tm.location}/{system_ds}/{self.vmid}", "0:1", self.name, "-", self.vmid,
                system_ds)

    def backup_doc(self) -> bytes:
        """The VM document of a backup that pauses the guest while its job starts (FS_FREEZE=SUSPEND)."""
        doc = etree.fromstring(etree.tostring(self.tm.api.vms[self.vmid]))
        etree.SubElement(doc.find("BACKUPS/BACKUP_CONFIG"), "FS_FREEZE").text = "SUSPEND"
        return etree.tostring(doc)


# (volume, DISK_TYPE): network disks through libgfapi, or files through the FUSE mount. Each GLUSTER
# domain costs ~3.5 min of libgfapi's 10 s teardowns (gluster 10.3): the volume as created runs it
# with `-m extended` only.
CASES = [pytest.param(("plain", "GLUSTER"), marks=pytest.mark.extended, id="GLUSTER-plain"),
         pytest.param(("replica-3-virt", "GLUSTER"), id="GLUSTER-replica-3-virt"),
         pytest.param(("plain", "FILE"), id="FILE-plain"),
         pytest.param(("replica-3-virt", "FILE"), id="FILE-replica-3-virt")]


@pytest.fixture(scope="module", params=CASES)
def case(request) -> tuple[str, str]:
    return request.param


@pytest.fixture(scope="module")
def site(request, case):
    """(lab, image datastore, TM, where sources go) of the case's volume (SITES)."""
    lab, ds, tm, sources = (request.getfixturevalue(name) for name in SITES[case[0]])
    return lab, ds, tm, getattr(sources, "sources", sources)


@pytest.fixture(scope="module")
def mode(case) -> str:
    return case[1]


@pytest.fixture(scope="module")
def guest(libvirtd, site, mode, vm_ids) -> Iterator[Guest]:
    """A VM booted from a TM-made qcow2 clone (vda), a persistent qcow2 disk (vdb) and a raw clone (vdc),
    as network disks opened through libgfapi (GLUSTER) or files opened through the FUSE mount (FILE);
    destroyed and undefined after the module's tests."""
    lab, ds, tm, sources_dir = site
    volume, image_ds = lab.volume, tm.image_ds
    raw = make_raw(sources_dir / "boot.raw", 4 * MiB, {0: BOOT_CODE, 510: b"\x55\xaa"})
    qcow = sources_dir / "boot.qcow2"
    qemu_img("convert", "-O", "qcow2", str(raw), str(qcow))
    base = ds.ok("cp", onedsim.image(0, path=str(qcow))).split()[0]
    persistent, _ = imported(ds, sources_dir, "virt-pers", "qcow2")
    raw_image, _ = imported(ds, sources_dir, "virt-raw", "raw")
    vmid = next(vm_ids)
    name = f"one-{vmid}"
    image = dict(volume=volume, datastore_id=image_ds, disk_type=mode)
    disks = [gluster_disk(0, base, "qcow2", target="vda", **image),
             gluster_disk(1, persistent, "qcow2", clone=False, target="vdb", **image),
             gluster_disk(2, raw_image, "raw", target="vdc", **image)]
    deploy(tm, vmid, *disks, lcm_state=1)
    tm.ok("clone", f"vm:{base}", tm.disk(vmid, 0), vmid, image_ds)
    tm.ok("ln", f"vm:{persistent}", tm.disk(vmid, 1), vmid, image_ds)
    tm.ok("clone", f"vm:{raw_image}", tm.disk(vmid, 2), vmid, image_ds)

    work = Path(tempfile.mkdtemp(prefix="one-gluster-virt-"))
    work.chmod(0o755)                                    # QEMU runs as libvirt-qemu
    serial = work / "serial.log"
    xml = domain(name, [core_disk(mode, tm, vmid, 0, "qcow2", "vda"),
                        core_disk(mode, tm, vmid, 1, "qcow2", "vdb", source=persistent),
                        core_disk(mode, tm, vmid, 2, "raw", "vdc")], serial)
    (work / "domain.xml").write_bytes(xml)
    try:
        assert subprocess.run(["virt-xml-validate", str(work / "domain.xml"), "domain"],
                              capture_output=True).returncode == 0
        for parent in tm.real(vmid).parents:   # QEMU (libvirt-qemu) opens FILE disks and the files its jobs
            if parent == Path(tempfile.gettempdir()):   # write by path: let it through pytest's 0700 directories
                break                                   # above the mount
            parent.chmod(parent.stat().st_mode | 0o001)
        virsh("define", str(work / "domain.xml"))
        virsh("start", name)
        yield Guest(mode, name, vmid, disks, ds, tm, sources_dir, work)
    finally:
        virsh("destroy", name, check=False)
        virsh("undefine", name, "--checkpoints-metadata", check=False)
        shutil.rmtree(work, ignore_errors=True)


pytestmark = pytest.mark.gfapi


def test_the_guest_boots_from_the_gluster_disks(guest):
    volume, vmid, tm = guest.tm.volume, guest.vmid, guest.tm
    blk = virsh("domblklist", guest.name).stdout.split()
    persistent = os.path.basename(guest.disks[1]["SOURCE"])
    if guest.mode == "GLUSTER":
        assert blk[blk.index("vda") + 1] == f"{volume}/{vmid}/disk.0"
        assert blk[blk.index("vdb") + 1] == f"{volume}/{persistent}"
        assert blk[blk.index("vdc") + 1] == f"{volume}/{vmid}/disk.2"
    else:                                            # the same files, through the FUSE mount
        assert blk[blk.index("vda") + 1] == str(tm.real(vmid, 0))
        assert blk[blk.index("vdb") + 1] == os.path.realpath(guest.disks[1]["SOURCE"])
        assert blk[blk.index("vdc") + 1] == str(tm.real(vmid, 2))
    serial = guest.work / "serial.log"
    assert wait_for(lambda: BANNER in (serial.read_bytes() if serial.exists() else b""), 120, poll=1), \
        "the guest never printed its banner"


def test_live_snapshots_and_save_as(guest):
    """snap_create_live, cpds of the running disk (it takes no snapshot), snap_delete of a running VM, and
    back to back, as scripts run them: the mount's view of the disk lags behind QEMU's."""
    tm, vmid, name, image_ds = guest.tm, guest.vmid, guest.name, guest.tm.image_ds
    clone = tm.real(vmid, 0)
    guest.state(57)                                                   # DISK_SNAPSHOT
    tm.ok("snap_create_live", tm.disk(vmid, 0), 0, vmid, image_ds)
    assert running_snapshots(name, "virtio-disk0") == ["one-snap-0"]
    guest.state(26)                                                   # HOTPLUG_SAVEAS
    saved = f"{guest.ds.base_path}/{'12' * 16}"
    tm.ok("cpds", tm.disk(vmid, 0), saved, -1, vmid, image_ds)
    assert "backing-filename" not in qemu_img("info", "--output=json", saved)
    raw_saved = guest.sources / "saved.raw"
    qemu_img("convert", "-O", "raw", saved, str(raw_saved))
    assert raw_saved.read_bytes()[:len(BOOT_CODE)] == BOOT_CODE      # the disk the guest booted from
    assert running_snapshots(name, "virtio-disk0") == ["one-snap-0"]  # the copy took no snapshot
    guest.state(59)                                                   # DISK_SNAPSHOT_DELETE
    tm.ok("snap_create_live", tm.disk(vmid, 0), 1, vmid, image_ds)
    tm.ok("snap_delete", tm.disk(vmid, 0), 0, vmid, image_ds)
    assert running_snapshots(name, "virtio-disk0") == ["one-snap-1"]
    for _ in range(3):
        snapshots(clone)
        tm.ok("snap_create_live", tm.disk(vmid, 0), 2, vmid, image_ds)
        tm.ok("snap_delete", tm.disk(vmid, 0), 2, vmid, image_ds)
        assert running_snapshots(name, "virtio-disk0") == ["one-snap-1"]


def test_save_as_of_a_live_snapshot_reads_what_qemu_wrote(guest):
    """cpds of a snapshot just taken of the running disk: read through libgfapi, as QEMU wrote it."""
    tm, vmid, name, image_ds = guest.tm, guest.vmid, guest.name, guest.tm.image_ds
    before = running_snapshots(name, "virtio-disk0")
    chunk = 64 << 10
    guest_write(name, "virtio-disk0", 3 * MiB, chunk, 0x3c)
    snapshots(tm.real(vmid, 0))                                       # the mount caches the disk's tables
    guest.state(57)                                                   # DISK_SNAPSHOT
    tm.ok("snap_create_live", tm.disk(vmid, 0), 3, vmid, image_ds)
    guest_write(name, "virtio-disk0", 3 * MiB, chunk, 0xc3)
    guest.state(26)                                                   # HOTPLUG_SAVEAS
    saved_snap = f"{guest.ds.base_path}/{'56' * 16}"
    tm.ok("cpds", tm.disk(vmid, 0), saved_snap, 3, vmid, image_ds)
    read = qemu_io(saved_snap, f"read -P 0x3c {3 * MiB} {chunk}")       # what the disk held at the snapshot
    assert f"read {chunk}/{chunk}" in read and "verification failed" not in read, read
    guest.state(59)                                                   # DISK_SNAPSHOT_DELETE
    tm.ok("snap_delete", tm.disk(vmid, 0), 3, vmid, image_ds)
    assert running_snapshots(name, "virtio-disk0") == before


def test_a_running_raw_disk_is_copied_by_its_qemu(guest):
    """snap_create_live and cpds of a raw disk: its QEMU copies it (a backup job of that disk alone) while
    the guest runs; a disk the domain lacks is refused with one line, and the VM runs on."""
    tm, vmid, name, image_ds = guest.tm, guest.vmid, guest.name, guest.tm.image_ds
    chunk = 64 << 10
    raw_clone = tm.real(vmid, 2)
    written = bytearray((guest.sources / "virt-raw.raw").read_bytes())
    assert raw_clone.read_bytes() == written        # the mount now caches the disk's pages
    guest_write(name, "virtio-disk2", MiB, chunk, 0x5a)
    written[MiB:MiB + chunk] = b"\x5a" * chunk
    guest.state(57)                                                   # DISK_SNAPSHOT
    tm.ok("snap_create_live", tm.disk(vmid, 2), 0, vmid, image_ds)
    snapshot = Path(f"{raw_clone}.snap/0")
    assert snapshot.read_bytes() == written and allocated(snapshot) < 4 * MiB   # sparse: 2 MiB of data
    guest_write(name, "virtio-disk2", MiB, chunk, 0xa5)
    guest.state(26)                                                   # HOTPLUG_SAVEAS
    saved_raw = f"{guest.ds.base_path}/{'34' * 16}"
    tm.ok("cpds", tm.disk(vmid, 2), saved_raw, -1, vmid, image_ds)
    assert json.loads(qemu_img("info", "--output=json", saved_raw))["format"] == "raw"
    assert Path(saved_raw).read_bytes() == written[:MiB] + b"\xa5" * chunk + written[MiB + chunk:]
    assert allocated(Path(saved_raw)) < 4 * MiB
    assert snapshot.read_bytes() == written                            # the snapshot keeps its point in time
    assert sorted(os.listdir(snapshot.parent)) == ["0"]                # nothing else left behind
    raw_image = guest.disks[2]["SOURCE"]
    deploy(tm, vmid, *guest.disks[:2], gluster_disk(2, raw_image, "raw", target="vdz", volume=tm.volume,
                                                    datastore_id=image_ds, disk_type=guest.mode),
           lcm_state=57, deploy_id=name)
    refused = tm.call("snap_create_live", tm.disk(vmid, 2), 1, vmid, image_ds)   # a disk the domain lacks
    assert refused.returncode != 0 and len(refused.plain_errors) == 1 and "vdz" in refused.stderr, refused.stderr
    assert sorted(os.listdir(snapshot.parent)) == ["0"]
    assert virsh("domstate", name).stdout.strip() == "running"
    guest.state(59)                                                   # DISK_SNAPSHOT_DELETE
    tm.ok("snap_delete", tm.disk(vmid, 2), 0, vmid, image_ds)
    assert not snapshot.exists()


def test_live_full_backup(guest):
    """The guest paused only while the job starts: QEMU copies each disk through libgfapi."""
    tm, vmid, name = guest.tm, guest.vmid, guest.name
    guest.state(69)                                                   # BACKUP
    doc, args = guest.backup_doc(), guest.backup_args()
    tm.ok("prebackup_live", *args, stdin=doc)
    folder = tm.real(vmid) / "backup"
    assert sorted(os.listdir(folder)) == ["disk.0.0", "disk.1.0", "vm.xml"]
    for disk_id in (0, 1):
        backup = str(folder / f"disk.{disk_id}.0")
        assert "backing-filename" not in qemu_img("info", "--output=json", "-U", backup)
        assert "Images are identical" in qemu_img("compare", "-U", backup, str(tm.real(vmid, disk_id)))
    assert virsh("domjobinfo", name).stdout.split(":")[1].split()[0] == "None"
    tm.ok("postbackup_live", *args, stdin=doc)
    assert not folder.exists()
    assert virsh("domstate", name).stdout.strip() == "running"


def test_live_incremental_backups(guest):
    """A chain of live increments: QEMU copies only what the guest wrote since the last checkpoint, also
    after libvirt forgot its checkpoints (their bitmaps stay, and the stray one goes); a parent the disks
    never had is refused."""
    tm, vmid, name = guest.tm, guest.vmid, guest.name
    guest.state(69)                                                   # BACKUP
    doc, args = guest.backup_doc(), guest.backup_args()
    folder, archive = tm.real(vmid) / "backup", guest.work / "archive"
    archive.mkdir()
    writes = {1: (1 * MiB, 64 << 10), 2: (2 * MiB, 128 << 10)}        # inside the 4 MiB disks
    for n in range(3):
        if n == 2:       # libvirt forgets its checkpoints (a transient domain started again): their bitmaps stay
            virsh("checkpoint-delete", name, f"one-{vmid}-0", "--metadata")
            virsh("checkpoint-delete", name, f"one-{vmid}-1", "--metadata")
        for device in ("virtio-disk0", "virtio-disk1") if n else ():
            guest_write(name, device, *writes[n], 0x70 + n)
        tm.ok("prebackup_live", *args, stdin=increment(doc, n - 1))
        for disk_id in (0, 1):
            made = folder / f"disk.{disk_id}.{n}"
            assert "backing-filename" not in qemu_img("info", "--output=json", "-U", str(made))
            if n:
                assert held_extents(made) == [writes[n]]
            shutil.copy(made, archive)
            whole = restored(archive, guest.work / f"restore-{disk_id}-{n}", disk_id, n)
            assert settles_to(whole, tm.real(vmid, disk_id))
        assert virsh("checkpoint-list", name, "--name").stdout.split() == [
            f"one-{vmid}-{m}" for m in sorted({max(n - 1, 0), n})]
        tm.ok("postbackup_live", *args, stdin=increment(doc, n - 1))
    assert sorted(bitmap["name"] for bitmap in node_bitmaps(name, "virtio-disk0")) == [
        f"one-{vmid}-1", f"one-{vmid}-2"]          # the forgotten checkpoint's stray bitmap was removed
    refused = tm.call("prebackup_live", *args, stdin=increment(doc, 5))   # a parent the disks never had
    assert refused.returncode != 0 and "onevm backup --reset" in refused.stderr, refused.stderr
    assert not folder.exists()
    assert virsh("checkpoint-list", name, "--name").stdout.split() == [f"one-{vmid}-1", f"one-{vmid}-2"]


def test_hot_attach_of_a_gluster_image(guest):
    """onevm disk-attach of an image to the running VM: the TM clones it into `disk.3` (the attach's
    prolog), then libvirt attaches the element core writes on attach (here on SCSI, OpenNebula's default
    `sd` prefix, which detaches without the guest's help): a file at the VM's directory on OpenNebula
    6.8-7.2, whose attach script had no gluster case, and for DISK_TYPE=GLUSTER a network disk on 7.4+.
    Each time QEMU has the disk open through the right driver, with the image as its backing file; it
    detaches, and the disk goes."""
    tm, vmid, name, image_ds = guest.tm, guest.vmid, guest.name, guest.tm.image_ds
    source = guest.disks[0]["SOURCE"]                                  # the boot image
    attached = gluster_disk(3, source, "qcow2", target="sdd", volume=tm.volume, datastore_id=image_ds,
                            disk_type=guest.mode)
    deploy(tm, vmid, *guest.disks, attached, lcm_state=17, deploy_id=name)   # HOTPLUG
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 3), vmid, image_ds)
    forms = {"file (6.8-7.2)": core_disk("FILE", tm, vmid, 3, "qcow2", "sdd")}
    if guest.mode == "GLUSTER":
        forms["network (7.4+)"] = core_disk("GLUSTER", tm, vmid, 3, "qcow2", "sdd")
    for form, element in forms.items():
        element.find("target").set("bus", "scsi")
        spec = guest.work / "attach.xml"
        spec.write_bytes(etree.tostring(element))
        virsh("attach-device", name, str(spec), "--live")
        alias = virsh_output.disk_alias(virsh("dumpxml", name).stdout, "sdd")
        blocks = json.loads(virsh("qemu-monitor-command", name, '{"execute": "query-block"}').stdout)["return"]
        image = virsh_output.inserted(blocks, alias)["image"]
        opened = image["filename"]                       # json:{...} of the blockdev chain QEMU opened
        assert ('"driver": "gluster"' in opened) == form.startswith("network") and "disk.3" in opened, opened
        assert image["format"] == "qcow2" and os.path.basename(source) in image["backing-image"]["filename"]
        virsh("detach-device", name, str(spec), "--live")
        assert wait_for(lambda: "sdd" not in virsh("domblklist", name).stdout.split(), 30), form
    deploy(tm, vmid, *guest.disks, lcm_state=17, deploy_id=name)
    tm.ok("delete", tm.disk(vmid, 3), vmid, image_ds)
    assert not tm.real(vmid, 3).exists() and virsh("domstate", name).stdout.strip() == "running"


def test_the_chain_goes_on_powered_off(guest):
    """After the live chain above: powered off, the chain goes on from the bitmaps QEMU stored in the
    disks as it stopped, and the FUSE mount shows the snapshots QEMU kept in the disk."""
    tm, vmid, name = guest.tm, guest.vmid, guest.name
    kept = running_snapshots(name, "virtio-disk0")
    virsh("destroy", name)
    assert snapshots(tm.real(vmid, 0)) == kept                       # what QEMU wrote through libgfapi, on FUSE
    guest.state(69)                                                   # BACKUP (of a powered-off VM)
    qemu_io(str(tm.real(vmid, 0)), "write -P 0x73 3145728 65536")
    doc, args = guest.backup_doc(), guest.backup_args()
    folder, archive = tm.real(vmid) / "backup", guest.work / "archive"
    tm.ok("prebackup", *args, stdin=increment(doc, 2))
    for disk_id, written in ((0, [(3 * MiB, 64 << 10)]), (1, [])):
        made = folder / f"disk.{disk_id}.3"
        assert held_extents(made) == written
        shutil.copy(made, archive)
        assert settles_to(restored(archive, guest.work / f"restore-{disk_id}-3", disk_id, 3), tm.real(vmid, disk_id))
        assert bitmaps(tm.real(vmid, disk_id)) == [f"one-{vmid}-2", f"one-{vmid}-3"]
    tm.ok("postbackup", *args, stdin=increment(doc, 2))

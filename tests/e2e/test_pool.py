"""A real trusted pool of three gluster servers on this machine (`one-gluster lab up --servers 3`: one
glusterd each on 127.1.1.1-3, a replica-3 volume with one brick per server), with
GLUSTER_HOST="127.1.1.1 127.1.1.2 127.1.1.3", as system datastore 400 and image datastore 401:

- server 1 lost: the mount serves on (its volfile server died, its bricks answer), every DS and TM
  action works, a new mount comes up through server 2, a real libvirtd boots a VM from the network
  disk core writes (every server a <host>), `one-gluster check` names the lost peer and brick;
  server 1 back: self-heal reaches zero and the three bricks hold the same bytes;
- servers 1 and 2 lost (client quorum gone): every action refuses in one line naming the volume and
  the lost quorum, and the surviving brick is left as it was; server 3 lost too: the mount's client
  lives on, and the drivers and `one-gluster mount` say that no brick answers (no remount).

The default glusterd is stopped while the pool runs (its own port 24007 is on every address), and
started again after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

import onedsim
from one_gluster.admin import mounts
from one_gluster.admin.pool import Pool
from one_gluster.core import gluster, gluster_xml
from one_gluster.core.errors import DriverError
from support.domains import BANNER, BOOT_CODE, core_disk, domain, virsh
from support.drivers import (Called, ImageDatastore, TransferManager, deploy, gluster_disk, image_datastore, imported,
                             transfer_manager)
from support.images import MiB, make_raw, qemu_img, qemu_io, reads_pattern
from support.labs import fuse_client
from support.system import wait_for

HOSTS = "127.1.1.1 127.1.1.2 127.1.1.3"
VOLUME = "onelab"                 # the pool lab's, which the demo uses
SYSTEM_DS, IMAGE_DS = 400, 401

pytestmark = pytest.mark.gfapi


@pytest.fixture(scope="module")
def pool(tmp_path_factory, glusterd) -> Iterator[Pool]:
    """The pool as `one-gluster lab up --servers 3 --dir D` makes it (D/pool), mounted at datastore 400."""
    root = tmp_path_factory.mktemp("lab") / "pool"
    datastores = root / "datastores"
    pool = Pool(root=str(root), volume=VOLUME, servers=3, mount_point=str(datastores / str(SYSTEM_DS)),
                stop_glusterd=True)
    try:
        pool.up()
        (datastores / str(IMAGE_DS)).symlink_to(str(SYSTEM_DS))
        yield pool
    finally:
        pool.down()


@pytest.fixture(scope="module")
def pool_ds(pool, remotes, sources_dir) -> ImageDatastore:
    return image_datastore(pool, remotes, sources_dir, IMAGE_DS, hosts=HOSTS)


@pytest.fixture(scope="module")
def pool_tm(pool, remotes, oned, auth_file) -> TransferManager:
    return transfer_manager(pool, remotes, oned, auth_file, SYSTEM_DS, hosts=HOSTS)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "one_gluster.admin.cli", *args], capture_output=True, text=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def brick_files(brick: str) -> dict[str, str]:
    """Every file on a brick (gluster's own .glusterfs aside) and the sha256 of its bytes."""
    found = {}
    for dirpath, dirs, names in os.walk(brick):
        dirs[:] = [d for d in dirs if not (dirpath == brick and d == ".glusterfs")]
        for name in names:
            path = Path(dirpath, name)
            found[str(path.relative_to(brick))] = digest(path)
    return found


def boot_image(ds: ImageDatastore, sources_dir: Path) -> str:
    """A raw image imported by `cp` whose boot sector prints BANNER on COM1: its SOURCE."""
    raw = make_raw(sources_dir / "pool-boot.raw", 4 * MiB, {0: BOOT_CODE, 510: b"\x55\xaa"})
    source, fmt = ds.ok("cp", onedsim.image(0, path=str(raw), datastore_id=IMAGE_DS)).split()
    assert fmt == "raw"
    return source


def test_the_default_glusterd_is_stopped_only_when_asked(tmp_path, glusterd):
    done = cli("lab", "up", "--servers", "3", "--dir", str(tmp_path))
    assert done.returncode == 2 and "give --stop-glusterd" in done.stderr
    assert not (tmp_path / "pool" / "bricks").exists()


def test_the_pool_is_three_servers_with_a_brick_each(pool):
    status = pool.status()
    assert status["servers"] == {a: "up" for a in HOSTS.split()}
    assert status["peers"] == {"127.1.1.2": "connected", "127.1.1.3": "connected"}
    assert sorted(status["bricks"]) == sorted(f"{s.address}:{b}" for s, b in zip(pool.members, pool.bricks))
    assert set(status["bricks"].values()) == {"online"} and status["mount"] == "mounted"
    assert "--volfile-server=127.1.1.1 --volfile-server=127.1.1.2 --volfile-server=127.1.1.3" in \
        fuse_client(Path(pool.mount_point))[1]
    info = gluster_xml.volume_info(gluster.cli("volume", "info", VOLUME, remote="127.1.1.2"), VOLUME)
    assert (info.replica_count, [b.host for b in info.bricks]) == (3, HOSTS.split())   # any server answers


def test_the_demo_on_the_pool(pool, remotes):
    """`one-gluster demo --servers 3` on the pool lab that runs: the drivers at work, server 1 lost and
    back, self-heal watched to zero."""
    lab_dir = str(Path(pool.root).parent)
    done = cli("demo", "--servers", "3", "--dir", lab_dir, "--remotes", str(remotes), "--no-gfapi")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"== replica-3 volume {VOLUME} of the pool lab ({HOSTS}), FUSE-mounted at {lab_dir}/pool/datastores/100" \
        in out
    assert f"$ {remotes}/tm/gluster/clone fe:{lab_dir}/pool/datastores//101/" in out
    hosts = [out.index(f'<host name="{h}" port="24007" transport="tcp"/>') for h in HOSTS.split()]
    assert hosts == sorted(hosts)                                       # every server, in GLUSTER_HOST's order
    assert "== server 127.1.1.1 fails" in out and "the mount serves on through the other bricks (mounted)" in out
    assert out.count("stdout: TOTAL_MB=") == 2 and out.count("exit 0") == 5
    assert "entries to heal: 0, after" in out
    assert pool.status()["servers"] == {a: "up" for a in HOSTS.split()}
    mounts.unmount(f"{lab_dir}/pool/datastores/100")


def datastore_actions(ds: ImageDatastore, sources_dir: Path) -> tuple[str, str]:
    """The DS driver's actions on the degraded volume: import, clone, mkfs, monitor, rm. Returns the
    SOURCEs it made that stay: the imported qcow2 image, the new datablock."""
    source, _ = imported(ds, sources_dir, "pool-img", "qcow2")
    assert "Images are identical" in qemu_img("compare", str(sources_dir / "pool-img.raw"), source)
    copy, fmt = ds.ok("clone", onedsim.image(2, path=source, datastore_id=IMAGE_DS)).split()
    assert fmt == "qcow2" and "Images are identical" in qemu_img("compare", source, copy)
    made = ds.ok("mkfs", onedsim.image(1, fmt="raw", fs="ext4", size_mb=16, datastore_id=IMAGE_DS)).strip()
    assert os.path.getsize(made) == 16 * MiB and Path(made).read_bytes()[1080:1082] == b"\x53\xef"  # ext4 magic
    usage = dict(line.split("=") for line in ds.ok("monitor", None, object_id=IMAGE_DS).split())
    assert int(usage["TOTAL_MB"]) > 0 and int(usage["USED_MB"]) + int(usage["FREE_MB"]) <= int(usage["TOTAL_MB"]) + 1
    assert ds.ok("rm", onedsim.image(3, source=copy, state=7, datastore_id=IMAGE_DS)) == ""
    assert not os.path.exists(copy)
    return source, made


def powered_off_vm_actions(tm: TransferManager, vmid: int, disks: list[dict], saved: str) -> None:
    """Snapshot create/revert/delete of the clone and the persistent disk, save-as of the clone into
    `saved`, resize, as oned calls them for a powered-off VM."""
    deploy(tm, vmid, *disks, lcm_state=51)                              # DISK_SNAPSHOT_POWEROFF
    for i in (0, 1):
        disk = tm.real(vmid, i)
        assert "wrote" in qemu_io(str(disk), f"write -P 0xaa {MiB} {MiB}")
        tm.ok("snap_create", tm.disk(vmid, i), 0, vmid, IMAGE_DS)
        assert "wrote" in qemu_io(str(disk), f"write -P 0xbb {MiB} {MiB}")
        tm.ok("snap_revert", tm.disk(vmid, i), 0, vmid, IMAGE_DS)
        assert reads_pattern(disk, "0xaa", str(MiB), str(MiB))
        tm.ok("snap_delete", tm.disk(vmid, i), 0, vmid, IMAGE_DS)
        assert "snapshots" not in json.loads(qemu_img("info", "-U", "--output=json", str(disk)))
    tm.ok("cpds", tm.disk(vmid, 0), saved, -1, vmid, IMAGE_DS)
    assert "Images are identical" in qemu_img("compare", "-U", str(tm.real(vmid, 0)), saved)
    deploy(tm, vmid, *disks, lcm_state=63)                              # DISK_RESIZE_POWEROFF
    tm.ok("resize", tm.disk(vmid, 0), 64, vmid, IMAGE_DS)
    assert json.loads(qemu_img("info", "-U", "--output=json", str(tm.real(vmid, 0))))["virtual-size"] == 64 * MiB


def boots(tm: TransferManager, vmid: int, disk_id: int) -> None:
    """A real libvirtd starts the VM from the network disk core writes for disk `disk_id`, every server a
    <host>, and the guest prints its banner: QEMU opened it through libgfapi with server 1 down. (Each
    gluster file QEMU opens waits ~13 s for the dead first server, and its 10 s teardown at exit: the VM
    boots from one raw disk, and is killed rather than left to QEMU's teardown.)"""
    work = Path(tempfile.mkdtemp(prefix="one-gluster-pool-"))
    work.chmod(0o755)                                                   # QEMU runs as libvirt-qemu
    serial, name = work / "serial.log", f"one-{vmid}"
    disk = core_disk("GLUSTER", tm, vmid, disk_id, "raw", "vda")
    assert [h.get("name") for h in disk.iter("host")] == HOSTS.split()
    (work / "domain.xml").write_bytes(domain(name, [disk], serial))
    try:
        virsh("create", str(work / "domain.xml"))
        assert wait_for(lambda: BANNER in (serial.read_bytes() if serial.exists() else b""), 120, poll=1), \
            "the guest never printed its banner"
        blk = virsh("domblklist", name).stdout.split()
        assert blk[blk.index("vda") + 1] == f"{VOLUME}/{vmid}/disk.{disk_id}"
    finally:
        pidfile = Path(f"/run/libvirt/qemu/{name}.pid")
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        virsh("destroy", name, check=False)
        shutil.rmtree(work, ignore_errors=True)


def monitor(tm: TransferManager) -> Called:
    """The system datastore's TM monitor, as oned runs it (without the VMs' disk sizes)."""
    return tm.call("monitor", SYSTEM_DS, stdin=onedsim.system_monitor_request(SYSTEM_DS, tm.location, False))


def test_server_1_lost_every_action_works_and_heal_levels_the_bricks(pool, pool_ds, pool_tm, sources_dir,
                                                                     libvirtd, vm_ids, tmp_path):
    ds, tm, mount, vmid = pool_ds, pool_tm, Path(pool.mount_point), next(vm_ids)
    (mount / "before").write_bytes(os.urandom(MiB))
    pool.members[0].lose()
    # its volfile server died while the bricks of servers 2 and 3 answer: the mount serves on, writes too
    assert mounts.state(pool.mount_point) == "mounted"
    (mount / "during").write_bytes(os.urandom(MiB))
    assert (mount / "before").stat().st_size == MiB

    base, made = datastore_actions(ds, sources_dir)
    boot = boot_image(ds, sources_dir)
    persistent, _ = imported(ds, sources_dir, "pool-pers", "qcow2")
    image = dict(volume=VOLUME, hosts=HOSTS, datastore_id=IMAGE_DS)
    disks = [gluster_disk(0, base, "qcow2", **image), gluster_disk(1, persistent, "qcow2", clone=False, **image),
             onedsim.volatile_disk(2, kind="fs", size_mb=16, datastore_id=SYSTEM_DS),
             gluster_disk(3, boot, "raw", target="vda", **image)]
    deploy(tm, vmid, *disks, lcm_state=1)                               # PROLOG
    tm.ok("clone", f"vm:{base}", tm.disk(vmid, 0), vmid, IMAGE_DS)
    tm.ok("ln", f"vm:{persistent}", tm.disk(vmid, 1), vmid, IMAGE_DS)
    tm.ok("mkimage", 16, "raw", tm.disk(vmid, 2), vmid, SYSTEM_DS)
    tm.ok("clone", f"vm:{boot}", tm.disk(vmid, 3), vmid, IMAGE_DS)
    deploy(tm, vmid, *disks, lcm_state=3)                               # RUNNING
    boots(tm, vmid, 3)
    saved = f"{ds.base_path}/{'ab' * 16}"
    powered_off_vm_actions(tm, vmid, disks, saved)
    assert "TOTAL_MB=" in monitor(tm).stdout
    deploy(tm, vmid, *disks, lcm_state=11)                              # EPILOG
    tm.ok("mvds", tm.disk(vmid, 1), persistent, vmid, IMAGE_DS)
    for i in range(4):
        tm.ok("delete", tm.disk(vmid, i), vmid, SYSTEM_DS if i == 2 else IMAGE_DS)
    tm.ok("delete", f"{tm.host}:{tm.location}{SYSTEM_DS}/{vmid}", vmid, SYSTEM_DS)
    assert not tm.real(vmid).exists()
    assert all(os.path.isfile(p) for p in [base, made, boot, persistent, saved])

    # a new mount through `one-gluster mount` comes up through server 2
    node = tmp_path / "node"
    done = cli("mount", VOLUME, "--host", HOSTS, "--system", "100", "--datastores", str(node), "--owner",
               "0:0", "--json")
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert (node / "100" / "during").read_bytes() == (mount / "during").read_bytes()
    finally:
        mounts.unmount(str(node / "100"))

    # `one-gluster check` through a server that answers names the lost server and its brick
    done = cli("check", VOLUME, "--host", "127.1.1.2", "--owner", "0:0", "--json")
    found = {item["check"]: item for item in json.loads(done.stdout)["items"]}
    assert found["peer 127.1.1.1"]["status"] == "fail" and "disconnected" in found["peer 127.1.1.1"]["found"]
    assert any(item["status"] != "ok" and pool.bricks[0] in item["check"] + item["found"]
               for item in found.values()), found

    # server 1 back: self-heal brings its brick level with the others, byte for byte, deletions included
    pool.restore(pool.members[0])
    assert wait_for(lambda: pool.heal_pending() == 0, 120, poll=2), pool.heal_pending()
    first, *others = (brick_files(brick) for brick in pool.bricks)
    assert all(other == first for other in others)
    assert {"before", "during", os.path.basename(saved)} <= set(first) and str(vmid) not in first


def test_quorum_lost_every_action_refuses_in_one_line_and_changes_nothing(pool, pool_ds, pool_tm, sources_dir,
                                                                          vm_ids):
    ds, tm, vmid = pool_ds, pool_tm, next(vm_ids)
    source, _ = imported(ds, sources_dir, "pool-q", "qcow2")
    persistent, _ = imported(ds, sources_dir, "pool-q-pers", "qcow2")
    image = dict(volume=VOLUME, hosts=HOSTS, datastore_id=IMAGE_DS)
    disks = [gluster_disk(0, source, "qcow2", **image), gluster_disk(1, persistent, "qcow2", clone=False, **image),
             gluster_disk(2, source, "qcow2", **image),                # deployed while quorum is lost
             onedsim.volatile_disk(3, kind="fs", size_mb=16, datastore_id=SYSTEM_DS)]
    deploy(tm, vmid, *disks, lcm_state=1)
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, IMAGE_DS)
    tm.ok("ln", f"vm:{persistent}", tm.disk(vmid, 1), vmid, IMAGE_DS)
    tm.ok("snap_create", tm.disk(vmid, 0), 0, vmid, IMAGE_DS)
    qcow = sources_dir / "pool-q.qcow2"                         # what `imported` converted: importable again
    survivor = pool.bricks[2]
    before = brick_files(survivor)

    pool.members[0].lose()
    pool.members[1].lose()
    try:
        assert wait_for(lambda: mounts.state(pool.mount_point) == "no quorum", 10)   # once the client sees it
        snap = dict(fmt="qcow2", target_snapshot=0, snapshot_ids=(0,), state=1, datastore_id=IMAGE_DS)
        deploy(tm, vmid, *disks, lcm_state=51)
        refused = {
            "DS cp": ds.call("cp", onedsim.image(0, path=str(qcow), datastore_id=IMAGE_DS)),
            "DS clone": ds.call("clone", onedsim.image(2, path=source, datastore_id=IMAGE_DS)),
            "DS mkfs": ds.call("mkfs", onedsim.image(1, fmt="raw", fs="ext4", size_mb=16, datastore_id=IMAGE_DS)),
            "DS snap_revert": ds.call("snap_revert", onedsim.image(4, source=persistent, **snap)),
            "DS monitor": ds.call("monitor", None, object_id=IMAGE_DS),
            "DS rm": ds.call("rm", onedsim.image(3, source=persistent, state=7, datastore_id=IMAGE_DS)),
            "TM clone": tm.call("clone", f"vm:{source}", tm.disk(vmid, 2), vmid, IMAGE_DS),
            "TM mkimage": tm.call("mkimage", 16, "raw", tm.disk(vmid, 3), vmid, SYSTEM_DS),
            "TM snap_create": tm.call("snap_create", tm.disk(vmid, 0), 1, vmid, IMAGE_DS),
            "TM snap_revert": tm.call("snap_revert", tm.disk(vmid, 0), 0, vmid, IMAGE_DS),
            "TM cpds": tm.call("cpds", tm.disk(vmid, 0), f"{ds.base_path}/{'cd' * 16}", -1, vmid, IMAGE_DS),
            "TM resize": tm.call("resize", tm.disk(vmid, 0), 64, vmid, IMAGE_DS),
            "TM monitor": monitor(tm),
            "TM delete": tm.call("delete", tm.disk(vmid, 0), vmid, IMAGE_DS),
        }
        # (mvds is not asked: it touches nothing, a persistent disk is its image already)
        wrong = {action: done.stderr for action, done in refused.items() if not refused_for_quorum(done)}
        assert not wrong, wrong
        assert brick_files(survivor) == before                  # nothing written, nothing half-written

        # server 3 lost too: the mount's client lives on, no brick answers; said so, and not remounted
        pool.members[2].lose()
        assert wait_for(lambda: mounts.state(pool.mount_point) == "unreachable", 10)
        done = ds.call("monitor", None, object_id=IMAGE_DS)
        assert done.returncode == 1 and len(done.plain_errors) == 1, done.stderr
        assert f"No brick of gluster volume {VOLUME} answers its mount" in done.plain_errors[0]
        client = fuse_client(Path(pool.mount_point))[0]
        with pytest.raises(DriverError, match="No brick of gluster volume"):
            mounts.mount(pool.source, pool.mount_point, pool.mount_options, reconnect=1)
        assert fuse_client(Path(pool.mount_point))[0] == client
    finally:
        pool.restore(*pool.members)
    assert wait_for(lambda: mounts.state(pool.mount_point) == "mounted", 30)
    assert os.path.isfile(tm.real(vmid, 0)) and os.path.islink(tm.real(vmid, 1))
    assert wait_for(lambda: pool.heal_pending() == 0, 60, poll=2), pool.heal_pending()
    first, *others = (brick_files(brick) for brick in pool.bricks)
    assert all(other == first for other in others) and first == before


def refused_for_quorum(done: Called) -> bool:
    """Exit 1 and one error line for oned that names the volume and the lost quorum."""
    return (done.returncode == 1 and len(done.plain_errors) == 1
            and f"Gluster volume {VOLUME} has lost quorum" in done.plain_errors[0])

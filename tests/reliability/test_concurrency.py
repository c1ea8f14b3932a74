"""Many actions at once, as oned runs them when many VMs start together (its TM and DS drivers run
actions in parallel threads): every one succeeds, every result is distinct and right, nothing is left
behind, and the monitor's figures match the files.

On the plain test volume; oned's API answered by the loopback stand-in (see conftest).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import pytest

import onedsim
from one_gluster.core import sizes
from support.drivers import Called, deploy, gluster_disk
from support.images import MiB, make_raw, qemu_img
from support.killing import STAGED
from support.labs import unstick

T = TypeVar("T")
AT_ONCE = 20
STUCK = 300

# Out of the default run (`tests/run.sh -m extended tests/reliability/test_concurrency.py`): twice,
# after the rest of the suite, the volume's FUSE client stopped talking to its brick in the 50-VM loop
# and never reconnected (docs/reliability.md, section 2); a CI run must not hang on gluster's stall.
pytestmark = pytest.mark.extended


@pytest.fixture
def at_once(lab) -> Callable[[Iterable[Callable[[], T]]], list[T]]:
    """Run calls together, AT_ONCE at a time; their results in order. Calls not done within STUCK
    seconds fail the test with what the volume's client and brick were doing, once the mount's FUSE
    connection is aborted so that they return: a hang on the volume does not hold the whole run."""
    def run(calls: Iterable[Callable[[], T]]) -> list[T]:
        with ThreadPoolExecutor(AT_ONCE) as workers:
            futures = [workers.submit(call) for call in calls]
            if wait(futures, timeout=STUCK).not_done:
                pytest.fail(f"calls still running after {STUCK} s:\n{unstick(lab)}")
            return [future.result() for future in futures]
    return run


def succeeded(results: list[Called]) -> None:
    failed = [r.stderr for r in results if r.returncode != 0]
    assert not failed, failed


def no_staging_left(*directories: Path) -> None:
    left = [str(p) for d in directories if d.is_dir() for p in d.iterdir() if STAGED.fullmatch(p.name)]
    assert not left, left


def raw_digest(path) -> bytes:
    """The guest-visible bytes of an image, as a sha256."""
    with tempfile.NamedTemporaryFile(dir="/dev/shm") as raw:
        subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(path), raw.name], check=True, capture_output=True)
        return hashlib.sha256(Path(raw.name).read_bytes()).digest()


@pytest.fixture(scope="module")
def image(ds, sources_dir) -> tuple[str, bytes]:
    """A qcow2 image of the datastore (64 MiB, 8 MiB of data): its SOURCE and guest-visible digest."""
    raw = make_raw(sources_dir / "many.raw", 64 * MiB, {i * 8 * MiB: os.urandom(MiB) for i in range(8)})
    qcow = sources_dir / "many.qcow2"
    qemu_img("convert", "-O", "qcow2", str(raw), str(qcow))
    source = ds.ok("cp", onedsim.image(0, path=str(qcow))).split()[0]
    return source, raw_digest(source)


def test_twenty_clones_of_one_image_at_once(at_once, tm, image, vm_ids):
    source, expected = image
    vms = [next(vm_ids) for _ in range(AT_ONCE)]
    for i, vmid in enumerate(vms):                       # half overlays, half full copies
        extra = {"QCOW2_STANDALONE": "YES"} if i % 2 else None
        deploy(tm, vmid, gluster_disk(0, source, "qcow2", size_mb=64, extra=extra), lcm_state=1)
    succeeded(at_once(lambda vmid=vmid: tm.call("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, tm.image_ds)
                      for vmid in vms))
    disks = [tm.real(vmid, 0) for vmid in vms]
    assert len({os.stat(d).st_ino for d in disks}) == AT_ONCE
    assert all(raw_digest(d) == expected for d in disks)
    backing = [json.loads(qemu_img("info", "-U", "--output=json", str(d))).get("backing-filename") for d in disks]
    assert [b is not None for b in backing] == [i % 2 == 0 for i in range(AT_ONCE)]
    no_staging_left(*(tm.real(vmid) for vmid in vms))
    succeeded(at_once(lambda vmid=vmid: tm.call("delete", f"{tm.host}:{tm.location}{tm.system_ds}/{vmid}", vmid,
                                                tm.system_ds) for vmid in vms))
    assert not any(tm.real(vmid).exists() for vmid in vms)


def test_twenty_imports_into_one_datastore_at_once(at_once, ds, sources_dir):
    raws = [make_raw(sources_dir / f"many-{i}.raw", 32 * MiB, {MiB * i: os.urandom(MiB)}) for i in range(AT_ONCE)]
    before = set(os.listdir(ds.directory))
    results = at_once(lambda raw=raw: ds.call("cp", onedsim.image(0, path=str(raw))) for raw in raws)
    succeeded(results)
    sources = [r.stdout.split()[0] for r in results]
    assert len(set(sources)) == AT_ONCE
    assert all(Path(s).read_bytes() == raw.read_bytes() for s, raw in zip(sources, raws))
    assert set(os.listdir(ds.directory)) - before == {os.path.basename(s) for s in sources}
    succeeded(at_once(lambda s=s: ds.call("rm", onedsim.image(3, source=s, state=7)) for s in sources))
    assert set(os.listdir(ds.directory)) == before


def test_twenty_snapshots_created_and_deleted_at_once(at_once, tm, image, vm_ids):
    source, expected = image
    vms = [next(vm_ids) for _ in range(AT_ONCE)]
    for vmid in vms:
        deploy(tm, vmid, gluster_disk(0, source, "qcow2", size_mb=64), lcm_state=1)
    succeeded(at_once(lambda vmid=vmid: tm.call("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, tm.image_ds)
                      for vmid in vms))
    for vmid in vms:
        deploy(tm, vmid, gluster_disk(0, source, "qcow2", size_mb=64), lcm_state=51)
    for action in ("snap_create", "snap_delete"):
        succeeded(at_once(lambda vmid=vmid: tm.call(action, tm.disk(vmid, 0), 0, vmid, tm.image_ds) for vmid in vms))
        snaps = [json.loads(qemu_img("info", "-U", "--output=json", str(tm.real(vmid, 0)))).get("snapshots", [])
                 for vmid in vms]
        assert all([s["name"] for s in found] == (["one-snap-0"] if action == "snap_create" else []) for found in snaps)
    assert all(raw_digest(tm.real(vmid, 0)) == expected for vmid in vms)
    for vmid in vms:
        shutil.rmtree(tm.real(vmid))


def monitored(tm, monitord) -> dict[int, dict[int, int]]:
    """What the TM monitor sends monitord: VM id -> disk id -> size in MB."""
    tm.ok("monitor", tm.system_ds, stdin=onedsim.system_monitor_request(tm.system_ds, tm.location, True),
          env=monitord.env)
    return monitord.vm_disks(wait=5)


def test_fifty_vms_deployed_and_terminated_in_a_loop(at_once, tm, image, vm_ids, monitord):
    source, expected = image
    vms = [next(vm_ids) for _ in range(50)]
    for start in range(0, 50, AT_ONCE):
        batch = vms[start:start + AT_ONCE]
        for vmid in batch:
            deploy(tm, vmid, gluster_disk(0, source, "qcow2", size_mb=64),
                   onedsim.volatile_disk(1, kind="swap", size_mb=8), lcm_state=1)
        succeeded(at_once(lambda vmid=vmid: tm.call("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, tm.image_ds)
                          for vmid in batch))
        succeeded(at_once(lambda vmid=vmid: tm.call("mkswap", 8, tm.disk(vmid, 1), vmid, tm.system_ds)
                          for vmid in batch))
        seen = monitored(tm, monitord)
        on_disk = {vmid: {i: sizes.ceil_mb(os.stat(tm.real(vmid, i)).st_blocks * 512) for i in (0, 1)}
                   for vmid in batch}
        assert {vmid: seen.get(vmid) for vmid in batch} == on_disk
        succeeded(at_once(lambda vmid=vmid: tm.call("delete", f"{tm.host}:{tm.location}{tm.system_ds}/{vmid}",
                                                    vmid, tm.system_ds) for vmid in batch))
        assert not set(batch) & set(monitored(tm, monitord))
    assert not any(tm.real(vmid).exists() for vmid in vms)
    assert raw_digest(source) == expected

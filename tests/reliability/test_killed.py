"""Every writing action killed at a random moment, by TERM (oned's timeout) and by KILL (see
`killing.py`): after each trial, the result is complete or nothing oned knows of changed, the
staging files left are hidden and swept only once stale, and the retried action succeeds.

    tests/run.sh tests/reliability                 # the CI sample: 1 trial, one signal per action
    ONE_GLUSTER_TRIALS=25 tests/run.sh tests/reliability/test_killed.py -s      # the soak: 50 per action

On the plain test volume, as root; oned's API answered by the loopback stand-in (see conftest).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

import onedsim
from one_gluster.core.staging import STALE_AFTER, remove_stale_staging
from support.drivers import ImageDatastore, TransferManager, deploy, gluster_disk
from support.images import MiB, make_raw, qemu_img
from support.killing import SEED, TRIALS, Case, Launch, Outcome, Tally, delays, run, staged, visible

REPORT = os.environ.get("ONE_GLUSTER_REPORT", "")          # a JSON lines file the tallies are added to


@dataclass
class Site:
    ds: ImageDatastore
    tm: TransferManager
    sources: Path
    http: str
    vm_ids: object

    @property
    def images(self) -> Path:
        return self.ds.directory

    def ds_launch(self, action: str, image, **template: str) -> Launch:
        payload = onedsim.request(self.ds.node(**template), image)
        return Launch([str(self.ds.remotes / "datastore" / "gluster" / action), "0"], payload)

    def tm_launch(self, action: str, *args: object) -> Launch:
        return Launch([str(self.tm.remotes / "tm" / "gluster" / action), *map(str, args)], b"", self.tm.env)


@pytest.fixture(scope="module")
def site(ds, tm, sources_dir, http_root, vm_ids) -> Site:
    return Site(ds, tm, sources_dir, http_root, vm_ids)


def digest(path) -> str:
    """The guest-visible bytes of an image (any format), as a sha256."""
    with tempfile.NamedTemporaryFile(dir="/dev/shm") as raw:
        subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(path), raw.name], check=True, capture_output=True)
        return hashlib.sha256(Path(raw.name).read_bytes()).hexdigest()


def checked(path) -> None:
    """`qemu-img check` finds no corruption (leaked clusters, space lost but no data, are allowed)."""
    done = subprocess.run(["qemu-img", "check", "-U", str(path)], capture_output=True, text=True)
    assert done.returncode in (0, 3), done.stdout + done.stderr          # 3: leaks only


def source_image(site: Site, name: str, size_mb: int, data_mb: int, fmt: str = "raw") -> Path:
    """A source image under the datastore's SAFE_DIRS (made once), `data_mb` of random data in it."""
    raw = site.sources / f"kill-{name}.raw"
    if not raw.exists():
        make_raw(raw, size_mb * MiB, {i * MiB * (size_mb // data_mb): os.urandom(MiB) for i in range(data_mb)})
    if fmt == "raw":
        return raw
    path = raw.with_suffix(".qcow2")
    if not path.exists():
        qemu_img("convert", "-O", "qcow2", str(raw), str(path))
    return path


def new_image_case(site: Site, launch: Launch, whole: Callable[[Path], None]) -> Case:
    """An action that makes a new image in the datastore and prints its SOURCE first on stdout;
    `whole(path)` checks that an image it made is complete and right."""
    before = visible(site.images)

    def finished(outcome: Outcome) -> None:
        source = Path(outcome.stdout.split()[0])
        assert source.name in visible(site.images) - before
        whole(source)

    def as_before(_: Outcome) -> int:
        """An image renamed into place by a process killed before it answered is whole, and unknown to
        oned, which takes no answer from a killed action: an orphan, counted."""
        orphans = visible(site.images) - before
        for name in orphans:
            whole(site.images / name)
        return len(orphans)

    def undo() -> None:
        for name in visible(site.images) - before:
            (site.images / name).unlink()

    return Case(launch, finished, as_before, [site.images], undo)


def copy_of(raw: Path, fmt: str) -> Callable[[Path], None]:
    """The check that an image holds what the raw image `raw` holds, in format `fmt`."""
    expected = digest(raw)

    def whole(source: Path) -> None:
        checked(source)
        assert json.loads(qemu_img("info", "-U", "--output=json", str(source)))["format"] == fmt
        assert digest(source) == expected, f"{source} is not the whole image"

    return whole


def cp_local(site: Site) -> Case:
    raw = source_image(site, "cp", 128, 32)
    return new_image_case(site, site.ds_launch("cp", onedsim.image(0, path=str(raw)), DRIVER="qcow2"),
                          copy_of(raw, "qcow2"))


def cp_http(site: Site) -> Case:
    raw = source_image(site, "cp", 128, 32)
    return new_image_case(site, site.ds_launch("cp", onedsim.image(0, path=f"{site.http}/{raw.name}"),
                                               DRIVER="qcow2"), copy_of(raw, "qcow2"))


def ds_clone(site: Site) -> Case:
    raw = source_image(site, "clone", 128, 32)
    image = site.images / "kill-clone-image"
    if not image.exists():
        qemu_img("convert", "-O", "qcow2", str(raw), str(image))
    return new_image_case(site, site.ds_launch("clone", onedsim.image(2, path=str(image))), copy_of(raw, "qcow2"))


def empty_ext4(source: Path) -> None:
    """The check that a new datablock is a 256 MB raw image holding an ext4 filesystem."""
    assert os.path.getsize(source) == 256 * MiB
    probe = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", str(source)], capture_output=True, text=True)
    assert probe.stdout.strip() == "ext4", probe.stdout + probe.stderr


def mkfs(site: Site) -> Case:
    return new_image_case(site, site.ds_launch("mkfs", onedsim.image(1, fmt="raw", fs="ext4", size_mb=256)),
                          empty_ext4)


def _vm(site: Site, image: Path, fmt: str, **disk: str) -> tuple[int, Path]:
    """A VM whose disk 0 is `image` (an image of the datastore), deployed by the TM's clone."""
    vmid = next(site.vm_ids)
    deploy(site.tm, vmid, gluster_disk(0, str(image), fmt, size_mb=128, extra=disk or None), lcm_state=1)
    return vmid, site.tm.real(vmid, 0)


def _datastore_image(site: Site, name: str, fmt: str) -> tuple[Path, str]:
    raw = source_image(site, name, 128, 32)
    image = site.images / f"kill-{name}-{fmt}"
    if not image.exists():
        qemu_img("convert", "-O", fmt, str(raw), str(image))
    return image, digest(raw)


def tm_clone_full_copy(site: Site) -> Case:
    image, expected = _datastore_image(site, "full", "raw")
    vmid, disk = _vm(site, image, "raw")
    tm = site.tm

    def finished(_: Outcome) -> None:
        assert digest(disk) == expected

    def as_before(outcome: Outcome) -> int:
        if disk.exists():                      # made whole before the kill (the retry finds it there)
            finished(outcome)
        return 0

    return Case(site.tm_launch("clone", f"vm:{image}", tm.disk(vmid, 0), vmid, tm.image_ds), finished, as_before,
                [tm.real(vmid)], lambda: _remove_vm(site, vmid))


def _remove_vm(site: Site, vmid: int) -> None:
    subprocess.run(["rm", "-rf", str(site.tm.real(vmid))], check=True)


def _deployed(site: Site, name: str, lcm_state: int) -> tuple[int, Path, str]:
    """A VM with a qcow2 clone as disk 0, deployed; in LCM state `lcm_state` for the action to come."""
    image, expected = _datastore_image(site, name, "qcow2")
    vmid, disk = _vm(site, image, "qcow2")
    site.tm.call("clone", f"vm:{image}", site.tm.disk(vmid, 0), vmid, site.tm.image_ds)
    assert disk.exists()
    deploy(site.tm, vmid, gluster_disk(0, str(image), "qcow2", size_mb=128), lcm_state=lcm_state)
    return vmid, disk, expected


def cpds(site: Site) -> Case:
    vmid, disk, expected = _deployed(site, "cpds", 27)              # HOTPLUG_SAVEAS_POWEROFF
    tm = site.tm
    name = os.urandom(16).hex()
    saved, target = site.images / name, f"{site.ds.base_path}/{name}"     # oned names it in datastore 101

    def finished(_: Outcome) -> None:
        checked(saved)
        assert digest(saved) == expected

    def as_before(outcome: Outcome) -> int:
        if saved.exists():                     # made whole before the kill, unknown to oned: an orphan
            finished(outcome)
        return int(saved.exists())

    def undo() -> None:
        saved.unlink(missing_ok=True)
        _remove_vm(site, vmid)

    return Case(site.tm_launch("cpds", tm.disk(vmid, 0), target, -1, vmid, tm.image_ds), finished, as_before,
                [site.images], undo)


def _disk_case(site: Site, vmid: int, action: str, args: tuple, finished: Callable[[Outcome], None],
               as_before: Callable[[Outcome], int]) -> Case:
    """TM `action` on disk 0 of VM `vmid`, `args` between the disk and the VM id as oned gives them."""
    tm = site.tm
    return Case(site.tm_launch(action, tm.disk(vmid, 0), *args, vmid, tm.image_ds), finished, as_before,
                [tm.real(vmid)], lambda: _remove_vm(site, vmid))


def _snapshots(disk: Path) -> list[str]:
    return [s["name"] for s in json.loads(qemu_img("info", "-U", "--output=json", str(disk))).get("snapshots", [])]


def snap_create(site: Site) -> Case:
    vmid, disk, expected = _deployed(site, "snap", 51)            # DISK_SNAPSHOT_POWEROFF

    def finished(_: Outcome) -> None:
        checked(disk)
        assert _snapshots(disk) == ["one-snap-0"] and digest(disk) == expected

    def as_before(_: Outcome) -> int:
        checked(disk)
        assert _snapshots(disk) in ([], ["one-snap-0"]) and digest(disk) == expected
        return 0

    return _disk_case(site, vmid, "snap_create", (0,), finished, as_before)


def snap_revert(site: Site) -> Case:
    vmid, disk, expected = _deployed(site, "revert", 51)
    tm = site.tm
    tm.ok("snap_create", tm.disk(vmid, 0), 0, vmid, tm.image_ds)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {8 * MiB}", str(disk)], check=True,
                   capture_output=True)
    written = digest(disk)

    def finished(_: Outcome) -> None:
        checked(disk)
        assert digest(disk) == expected and _snapshots(disk) == ["one-snap-0"]

    def as_before(_: Outcome) -> int:
        checked(disk)
        assert digest(disk) in (written, expected) and _snapshots(disk) == ["one-snap-0"]
        return 0

    return _disk_case(site, vmid, "snap_revert", (0,), finished, as_before)


def resize(site: Site) -> Case:
    vmid, disk, expected = _deployed(site, "resize", 63)          # DISK_RESIZE_POWEROFF

    def size() -> int:
        return json.loads(qemu_img("info", "-U", "--output=json", str(disk)))["virtual-size"]

    def finished(_: Outcome) -> None:
        checked(disk)
        assert size() == 256 * MiB

    def as_before(_: Outcome) -> int:
        checked(disk)
        assert size() in (128 * MiB, 256 * MiB)
        return 0

    return _disk_case(site, vmid, "resize", (256,), finished, as_before)


def delete(site: Site) -> Case:
    vmid, disk, expected = _deployed(site, "delete", 11)          # EPILOG

    def finished(_: Outcome) -> None:
        assert not disk.exists()

    def as_before(_: Outcome) -> int:
        assert not disk.exists() or digest(disk) == expected
        return 0

    return _disk_case(site, vmid, "delete", (), finished, as_before)


ACTIONS: dict[str, Callable[[Site], Case]] = {
    "DS cp (local, raw to qcow2)": cp_local, "DS cp (http, raw to qcow2)": cp_http, "DS clone": ds_clone,
    "DS mkfs": mkfs, "TM clone (full copy)": tm_clone_full_copy, "TM cpds": cpds, "TM snap_create": snap_create,
    "TM snap_revert": snap_revert, "TM resize": resize, "TM delete": delete,
}
SIGNALS = {"TERM": signal.SIGTERM, "KILL": signal.SIGKILL}


def calibrate(site: Site, make: Callable[[Site], Case]) -> float:
    """The action's own wall time, unkilled (its result checked)."""
    case = make(site)
    started = time.monotonic()
    outcome = run(case.launch)
    elapsed = time.monotonic() - started
    assert outcome.how == "finished", outcome.stderr
    case.finished(outcome)
    case.undo()
    return elapsed


def left_behind(case: Case, before: dict[Path, set[str]]) -> dict[Path, set[str]]:
    return {d: staged(d) - before.get(d, set()) for d in case.workdirs}


def swept_only_once_stale(left: dict[Path, set[str]]) -> None:
    """The staging rule on what a killed action left: kept while it may still be written, removed once
    stale (`core.staging.remove_stale_staging`, which each import runs on its datastore)."""
    for directory, names in left.items():
        if not names:
            continue
        assert not set(map(os.path.basename, remove_stale_staging(str(directory)))) & names
        old = time.time() - STALE_AFTER - 60
        for name in names:
            os.utime(directory / name, (old, old))
        assert set(map(os.path.basename, remove_stale_staging(str(directory)))) >= names


def cases() -> list:
    """Every action under both signals; the CI sample (one trial each) takes one signal per action, in
    turn, and leaves the other to `-m extended` (a soak, with ONE_GLUSTER_TRIALS set, runs all)."""
    sampled = TRIALS == 1
    return [pytest.param(action, signame, id=f"{action}-{signame}",
                         marks=[pytest.mark.extended] if sampled and (i + j) % 2 else [])
            for i, action in enumerate(ACTIONS) for j, signame in enumerate(SIGNALS)]


@pytest.mark.parametrize(("action", "signame"), cases())
def test_killed_at_any_moment(site, action, signame):
    make, signum = ACTIONS[action], SIGNALS[signame]
    rng = random.Random(f"{SEED}/{action}/{signame}")
    duration = calibrate(site, make)
    tally = Tally(action, signame)
    for delay in delays(rng, duration, TRIALS):
        case = make(site)
        before = {d: staged(d) for d in case.workdirs}
        outcome = run(case.launch, delay, signum)
        tally.outcomes[outcome.how] += 1
        where = f"{action}, {signame} after {delay:.3f} s of {duration:.3f} (seed {SEED})"
        assert outcome.how != "failed", f"{where}: {outcome.stderr}"
        if outcome.how == "finished":
            case.finished(outcome)
        else:
            try:
                tally.orphans += case.as_before(outcome)
            except AssertionError as exc:
                raise AssertionError(f"{where}: {exc}\nstdout: {outcome.stdout}\nstderr: {outcome.stderr}") from None
            left = left_behind(case, before)
            if signum == signal.SIGTERM:        # the driver unwinds: its staging files go with it
                assert not any(left.values()), f"{where}: {left}"
            tally.left_staged += sum(map(len, left.values()))
            swept_only_once_stale(left)
            again = run(case.launch)            # oned's retry
            assert again.how == "finished", f"{where}, retried: {again.stderr}"
            case.finished(again)
        case.undo()
    print(tally.line())
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(json.dumps({"action": action, "signal": signame, "duration_s": round(duration, 3),
                                **tally.outcomes, "left_staged": tally.left_staged, "orphans": tally.orphans}) + "\n")

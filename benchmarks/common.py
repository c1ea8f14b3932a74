"""What the benchmarks share: sources, timing, brick usage, and drivers installed as oned runs them."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from one_gluster.admin import checks, lab as labmod

REPO = Path(__file__).resolve().parents[1]
MiB, GiB = 1 << 20, 1 << 30
HOST = "127.0.1.1"
# The drivers fsync before their rename; `sync FILE` after cp is the same durability. Args: SRC DST.
DURABLE_CP = ["sh", "-c", 'cp --sparse=always "$1" "$2" && sync "$2"', "-"]


def install_drivers(work: Path) -> Path:
    """install.sh into `work/remotes`, the executables running with this interpreter (a self-contained
    ONE_LOCATION under `work`, so that nothing lands in the machine's /usr/share or /etc/one)."""
    remotes = work / "remotes"
    subprocess.run([str(REPO / "install.sh"), "--no-packages", "--python", sys.executable, "--remotes",
                    str(remotes)], check=True, capture_output=True,
                   env={**os.environ, "ONE_LOCATION": str(work / "one")})
    return remotes


@contextmanager
def workspace(source: bool = True) -> Iterator[tuple[Path, Path, Path]]:
    """(work directory, installed remotes, the 2 GiB source unless not asked for) with glusterd running;
    all undone after."""
    work = Path(tempfile.mkdtemp(prefix="one-gluster-bench-", dir="/var/tmp"))
    started = False
    try:
        remotes = install_drivers(work)
        image = work / "src.raw"
        if source:
            make_source(image)
            os.sync()
        started = labmod.start_glusterd()
        yield work, remotes, image
    finally:
        if started:
            labmod.stop_glusterd()
        shutil.rmtree(work, ignore_errors=True)


def prepare(volume: labmod.Lab) -> str:
    """Set the volume's options as `one-gluster prepare` does (the option group for its type, except
    sharding), the way the admin guide has operators run their volume; describe what changed."""
    changes = checks.plan(volume.volume)
    checks.prepare(volume.volume, changes)
    time.sleep(2)                          # the mounted client switches to the new graph
    return ", ".join(f"{c.option}={c.after}" for c in changes)


def make_source(path: Path, size: int = 2 * GiB, data: int = 200 * MiB) -> None:
    """A raw image of `size` bytes (2 GiB) holding `data` bytes (200 MiB) of random data, in 20 equal
    extents spread evenly over the disk."""
    if path.exists() and path.stat().st_size == size:
        return
    extent = data // 20
    with open(path, "wb") as f:
        f.truncate(size)
        for i in range(20):
            f.seek(i * (size // 20) + 3 * MiB)
            f.write(os.urandom(extent))


def one_mib(directory: Path) -> Path:
    """A raw image of 1 MiB of random data in `directory`: what an action costs with almost no data."""
    path = directory / "one-mib.raw"
    if not path.exists():
        path.write_bytes(os.urandom(MiB))
    return path


def _brick_bytes(bricks: list[str]) -> int:
    seen, total = set(), 0
    for brick in bricks:
        for root, _dirs, names in os.walk(brick):
            for name in names:
                try:
                    st = os.lstat(os.path.join(root, name))
                except FileNotFoundError:          # shards are deleted in the background
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


def brick_bytes(bricks: list[str]) -> int:
    """Space used on the bricks, once background shard deletion has settled."""
    last = _brick_bytes(bricks)
    for _ in range(50):
        time.sleep(0.2)
        now = _brick_bytes(bricks)
        if now == last:
            return now
        last = now
    return last


def _driver_python(executable: Path) -> str:
    """The interpreter an installed driver runs with (its `#!` line)."""
    return executable.read_text().splitlines()[0][2:].split()[0]


def _lxml_floor(executable: Path) -> list[str]:
    """`import lxml.etree` alone, started as the installed driver is (its flags and import path, no
    teardown): the floor of any action that parses XML."""
    shebang, path_line = executable.read_text().splitlines()[:2]
    interpreter, flags = shebang[2:].split()
    return [interpreter, flags, "-c", f"{path_line}\nimport lxml.etree, os\nos._exit(0)"]


def against_python(executable: Path, runs: int, calls: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Each call's median wall time against `python -c pass` run by `executable`'s interpreter, and
    against the lxml floor of `executable`; all interleaved, so that all see the same machine load.
    Gives `<name>_ms` and `<name>_ratio` for each call, for `python` and for `lxml`."""
    bare, floor = [_driver_python(executable), "-c", "pass"], _lxml_floor(executable)
    timings = {"python": lambda: timed(bare)[0], "lxml": lambda: timed(floor)[0], **calls}
    samples: dict[str, list[float]] = {name: [] for name in timings}
    for _ in range(runs):
        for name, call in timings.items():
            samples[name].append(call())
    base = statistics.median(samples["python"])
    out: dict[str, float] = {}
    for name, values in samples.items():
        out[f"{name}_ms"] = statistics.median(values) * 1000
        out[f"{name}_ratio"] = statistics.median(values) / base
    return out


def against_cp(driver: list[float], cp: list[float], durable: list[float], fixed: list[float]) -> str:
    """A copying action's times, one per round of the run, against cp's and cp + sync's: the ratio of the
    medians, and the driver's time over cp's round by round (median, lowest, highest: the spread that one
    ratio hides); also its fixed cost (its time for a 1 MiB image), and the rest of its time against cp."""
    med = statistics.median
    d, c, s, f = med(driver), med(cp), med(durable), med(fixed)
    paired = sorted(x / y for x, y in zip(driver, cp))
    return (f"driver {d:.2f} s, cp --sparse=always {c:.2f} s, ratio {d / c:.2f} (round by round {med(paired):.2f}, "
            f"{paired[0]:.2f} to {paired[-1]:.2f}; vs cp + sync of the file {d / s:.2f}; the driver's fixed cost, its "
            f"time for a 1 MiB image, {f * 1000:.0f} ms; the rest against cp {(d - f) / c:.2f})")


def timed(argv: list[str], stdin: bytes | None = None, env: dict[str, str] | None = None) -> tuple[float, bytes]:
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{argv[0]} failed: {done.stderr.decode()}")
    return elapsed, done.stdout

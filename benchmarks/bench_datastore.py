"""Datastore driver benchmarks on lab volumes; every figure is a ratio to a baseline of the same run.

    .venv/bin/python benchmarks/bench_datastore.py [--rounds 3] [--monitor-runs 40]

1. `cp` of a 2 GiB raw image holding 200 MiB of data, from local disk, against
   `cp --sparse=always` onto the same FUSE mount: wall time (the ratio of the medians, and round by
   round), and the space the copy takes on the bricks (each inode once). The volumes are set up as
   the admin guide has operators run theirs, with `one-gluster prepare` (the option group for the
   volume's type): a plain volume, a sharded one (where holes cannot be seen), and, on the plain
   volume, the same image with its zeros written out (no holes to skip: every zero block is found by
   reading it, by both cp and the driver). For reference, the plain volume also as created, before
   `prepare`. Also the driver's fixed cost (its time for a 1 MiB image: start, imports, checks,
   `qemu-img info`), and the rest of its time against cp.
2. `monitor`: the median wall time of one call, as oned makes it (the installed executable with
   its own interpreter line, base64 request on stdin), against `python -c pass` run by the same
   interpreter (the real one, not the pyenv shim on PATH); also `import lxml.etree` alone, started
   the way the drivers are (`-IS`, their import path, no teardown): the floor of any action that
   parses its request with lxml.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

import onedsim
from one_gluster.admin import lab as labmod
from one_gluster.core import gluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (DURABLE_CP, HOST, MiB, against_cp, against_python, brick_bytes, one_mib, prepare,  # noqa: E402
                    timed, workspace)


def bench_cp(volume: labmod.Lab, remotes: Path, source: Path, rounds: int) -> dict[str, list[float]]:
    """Each round's times (s) of cp, cp + sync, the driver, and the driver with a 1 MiB image; the space
    cp and the driver took, over the data."""
    template = {"GLUSTER_HOST": HOST, "GLUSTER_VOLUME": volume.volume, "SAFE_DIRS": f"{source.parent}/"}
    ds = onedsim.datastore(101, volume.mount_point, template)
    request = onedsim.request(ds, onedsim.image(0, path=str(source)))
    tiny = onedsim.request(ds, onedsim.image(0, path=str(one_mib(source.parent))))
    base_t, base_s, durable_t, drv_t, drv_s, fixed_t = [], [], [], [], [], []
    for _ in range(rounds):
        before = brick_bytes(volume.bricks)
        target = Path(volume.mount_point) / "baseline.raw"
        t, _ = timed(["cp", "--sparse=always", str(source), str(target)])
        base_t.append(t)
        base_s.append(brick_bytes(volume.bricks) - before)
        target.unlink()
        brick_bytes(volume.bricks)
        t, _ = timed([*DURABLE_CP, str(source), str(target)])
        durable_t.append(t)
        target.unlink()

        before = brick_bytes(volume.bricks)
        t, out = timed([str(remotes / "datastore/gluster/cp"), "0"], request)
        drv_t.append(t)
        drv_s.append(brick_bytes(volume.bricks) - before)
        Path(out.split()[0].decode()).unlink()
        t, out = timed([str(remotes / "datastore/gluster/cp"), "0"], tiny)
        fixed_t.append(t)
        Path(out.split()[0].decode()).unlink()
    data = 200 * MiB
    return {"cp": base_t, "durable": durable_t, "driver": drv_t, "fixed": fixed_t,
            "cp_space": [s / data for s in base_s], "driver_space": [s / data for s in drv_s]}


def report_cp(name: str, volume: labmod.Lab, remotes: Path, source: Path, rounds: int) -> None:
    r = bench_cp(volume, remotes, source, rounds)
    print(f"cp 2 GiB / 200 MiB data, {name}: {against_cp(r['driver'], r['cp'], r['durable'], r['fixed'])}; "
          f"space/data: driver {statistics.median(r['driver_space']):.3f}, cp {statistics.median(r['cp_space']):.3f}")


def bench_monitor(volume: labmod.Lab, remotes: Path, runs: int) -> dict[str, float]:
    executable = remotes / "datastore/gluster/monitor"
    template = {"GLUSTER_HOST": HOST, "GLUSTER_VOLUME": volume.volume}
    request = onedsim.request(onedsim.datastore(101, volume.mount_point, template))
    return against_python(executable, runs, {"monitor": lambda: timed([str(executable), "101"], request)[0]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--monitor-runs", type=int, default=40)
    args = parser.parse_args()

    with workspace() as (work, remotes, source):
        plain = labmod.Lab(root=str(work / "lab"), volume="ogbench", host=HOST)
        sharded = labmod.Lab(root=str(work / "lab"), volume="ogshard", host=HOST)
        try:
            plain.up()
            sharded.up()
            gluster.set_option("ogshard", "features.shard", "on")
            print(f"interpreter: {sys.executable}")
            written = work / "written.raw"
            subprocess.run(["cp", "--sparse=never", str(source), str(written)], check=True)
            os.sync()                      # its 2 GiB of writeback is setup, not part of any copy
            report_cp("plain volume as created", plain, remotes, source, args.rounds)
            print(f"one-gluster prepare sets: {prepare(plain)}")
            prepare(sharded)
            for name, volume, image in (("plain volume", plain, source), ("sharded volume", sharded, source),
                                        ("plain volume, zeros written", plain, written)):
                report_cp(name, volume, remotes, image, args.rounds)
            m = bench_monitor(plain, remotes, args.monitor_runs)
            print(f"monitor: median {m['monitor_ms']:.1f} ms, python -c pass {m['python_ms']:.1f} ms, "
                  f"ratio {m['monitor_ratio']:.2f} (importing lxml.etree alone: {m['lxml_ratio']:.2f})")
        finally:
            plain.down()
            sharded.down()


if __name__ == "__main__":
    main()

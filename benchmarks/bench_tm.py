"""Transfer-manager benchmarks on a lab volume; every figure is a ratio to a baseline of the same run.

    .venv/bin/python benchmarks/bench_tm.py [--rounds 9] [--runs 40] [--large-rounds 3]

The TM reads each disk's attributes from oned through pyone; here a loopback XML-RPC server in this
process answers with documents in oned's format (oned itself is not in any registry).

1. `clone` of a 10 GiB qcow2 image (1 GiB of data) into a VM disk: median wall time, and its ratio
   to the clone of a 100 MiB image (an overlay's cost must not depend on the image's size).
2. Full-copy clone (a raw disk; a qcow2 disk with QCOW2_STANDALONE=yes) of a 2 GiB image holding
   200 MiB of data, against `cp --sparse=always` of the same image onto the same mount, and against
   that cp followed by `sync FILE` (the durability the driver gives: it fsyncs before its rename),
   as the ratio of the medians and round by round.
   Then the same for an image the size of an OS image, 10 GiB with 1 GiB of data (`--large-rounds`
   rounds; 0 skips it): the driver's fixed cost (start, oned's answer) weighs less there. That fixed
   cost is measured too, as the same clone of a 1 MiB image, and the rest of the driver's time is
   compared with cp.
3. Cheap actions, `mv` of a disk and `premigrate`: median wall time against `python -c pass` run by
   the drivers' own interpreter; also `import lxml.etree` alone, started as the drivers are, the
   floor of premigrate (which parses the VM document that oned sends).

The volume is set up as the admin guide has operators run theirs, with `one-gluster prepare` (the
option group for the volume's type); for reference, the 2 GiB full copies are also measured on the
volume as created, before `prepare`.

Images made for a measurement are synced before it: their writeback is setup, not the action's cost
(every action that writes fsyncs its own file, which on the brick can wait for earlier dirty data).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from lxml import etree

import onedsim
from one_gluster.admin import lab as labmod
from one_gluster.core import qemu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (DURABLE_CP, HOST, GiB, MiB, against_cp, against_python, make_source, one_mib, prepare,  # noqa: E402
                    timed, workspace)

VOLUME = "ogtmbench"


class Bench:
    def __init__(self, work: Path, api: onedsim.OnedApi, remotes: Path, mount: Path) -> None:
        auth = work / "one_auth"
        auth.write_text("oneadmin:opennebula\n")
        self.env = {**os.environ, "ONE_XMLRPC": api.endpoint, "ONE_AUTH": str(auth)}
        self.api, self.remotes, self.mount = api, remotes, mount
        self.location = str(mount.parent) + "/"
        self.next_vm = 100

    def run(self, action: str, *args: object, stdin: bytes | None = None) -> float:
        return timed([str(self.remotes / "tm/gluster" / action), *map(str, args)], stdin, self.env)[0]

    def clone(self, image: Path, fmt: str, **disk: str) -> tuple[float, Path]:
        vmid, self.next_vm = self.next_vm, self.next_vm + 1
        source = f"{self.location}101/{image.name}"
        self.api.vms[vmid] = onedsim.vm(vmid, [onedsim.image_disk(
            0, image_id=0, source=source, fmt=fmt, size_mb=image.stat().st_size // MiB, volume=VOLUME, hosts=HOST,
            extra=disk)])
        t = self.run("clone", f"vm:{source}", f"127.0.0.1:{self.location}100/{vmid}/disk.0", vmid, 101)
        return t, self.mount / str(vmid) / "disk.0"


def qcow2_image(path: Path, size: int, data: int) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(size)], check=True)
    for offset in range(0, data, 64 * MiB):
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a {offset} {min(64 * MiB, data - offset)}",
                        str(path)], check=True, capture_output=True)
    qemu.pad_to_sector(str(path))
    return path


def bench_clone(b: Bench, rounds: int) -> dict[str, float]:
    big = qcow2_image(b.mount / "big.qcow2", 10 * GiB, GiB)
    small = qcow2_image(b.mount / "small.qcow2", 100 * MiB, 50 * MiB)
    os.sync()
    times: dict[str, list[float]] = {"big": [], "small": []}
    for _ in range(rounds):                  # interleaved, so that both see the same machine load
        for name, image in (("big", big), ("small", small)):
            t, disk = b.clone(image, "qcow2")
            times[name].append(t)
            shutil.rmtree(disk.parent)
    big_s, small_s = statistics.median(times["big"]), statistics.median(times["small"])
    return {"big_s": big_s, "small_s": small_s, "ratio": big_s / small_s}


def bench_full_copy(b: Bench, source: Path, rounds: int) -> dict[str, tuple[list[float], ...]]:
    """For a raw and a standalone qcow2 disk: each round's times (s) of the driver, cp, cp + sync, and the
    driver with a 1 MiB image."""
    raw = b.mount / f"{source.stem}.raw"
    subprocess.run(["cp", "--sparse=always", str(source), str(raw)], check=True)
    qcow = b.mount / f"{source.stem}.qcow2"
    qemu.convert(str(source), str(qcow), "qcow2", src_fmt="raw")        # padded to 512 bytes, as imports are
    tiny_raw = one_mib(b.mount)
    tiny_qcow = b.mount / "one-mib.qcow2"
    if not tiny_qcow.exists():
        qemu.convert(str(tiny_raw), str(tiny_qcow), "qcow2", src_fmt="raw")
    os.sync()
    out: dict[str, tuple[list[float], ...]] = {}
    cases = (("raw", raw, tiny_raw, "raw", {}),
             ("standalone qcow2", qcow, tiny_qcow, "qcow2", {"QCOW2_STANDALONE": "YES"}))
    for name, image, tiny, fmt, disk in cases:
        base, durable, drv, fixed = [], [], [], []
        for _ in range(rounds):
            target = b.mount / "baseline"
            base.append(timed(["cp", "--sparse=always", str(image), str(target)])[0])
            target.unlink()
            durable.append(timed([*DURABLE_CP, str(image), str(target)])[0])
            target.unlink()
            t, made = b.clone(image, fmt, **disk)
            drv.append(t)
            shutil.rmtree(made.parent)
            t, made = b.clone(tiny, fmt, **disk)
            fixed.append(t)
            shutil.rmtree(made.parent)
        out[name] = (drv, base, durable, fixed)
        image.unlink()
    return out


def report_full_copy(what: str, f: dict[str, tuple[list[float], ...]]) -> None:
    for name, times in f.items():
        print(f"full-copy clone, {name}, {what}: {against_cp(*times)}")


def bench_cheap(b: Bench, runs: int) -> dict[str, float]:
    vmid = 99
    disk = f"{b.location}100/{vmid}/disk.0"
    vm_xml = base64.b64encode(etree.tostring(onedsim.vm(vmid, [onedsim.volatile_disk(0, kind="swap", size_mb=8)])))
    return against_python(b.remotes / "tm/gluster/premigrate", runs, {
        "mv": lambda: b.run("mv", f"127.0.0.1:{disk}", f"127.0.0.2:{disk}", vmid, 101),
        "premigrate": lambda: b.run("premigrate", "127.0.0.1", "127.0.0.2", f"{b.location}100/{vmid}", vmid, 100,
                                    stdin=vm_xml)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--large-rounds", type=int, default=3)
    args = parser.parse_args()

    with workspace() as (work, remotes, source):
        volume = labmod.Lab(root=str(work / "lab"), volume=VOLUME, host=HOST,
                            mount_point=str(work / "datastores" / "100"))
        try:
            volume.up()
            (work / "datastores" / "101").symlink_to("100")
            with onedsim.OnedApi() as api:
                b = Bench(work, api, remotes, Path(volume.mount_point))
                print(f"interpreter: {sys.executable}")
                report_full_copy("2 GiB / 200 MiB data, volume as created", bench_full_copy(b, source, args.rounds))
                print(f"one-gluster prepare sets: {prepare(volume)}")
                c = bench_clone(b, args.rounds)
                print(f"clone (qcow2 overlay): 10 GiB image {c['big_s'] * 1000:.0f} ms, 100 MiB image "
                      f"{c['small_s'] * 1000:.0f} ms, ratio {c['ratio']:.2f}")
                report_full_copy("2 GiB / 200 MiB data", bench_full_copy(b, source, args.rounds))
                m = bench_cheap(b, args.runs)
                print(f"cheap actions: python -c pass {m['python_ms']:.1f} ms; mv {m['mv_ms']:.1f} ms, "
                      f"ratio {m['mv_ratio']:.2f}; premigrate {m['premigrate_ms']:.1f} ms, "
                      f"ratio {m['premigrate_ratio']:.2f} (importing lxml.etree alone: {m['lxml_ratio']:.2f})")
                if args.large_rounds:
                    large = work / "large.raw"
                    make_source(large, 10 * GiB, GiB)
                    os.sync()
                    report_full_copy("10 GiB / 1 GiB data", bench_full_copy(b, large, args.large_rounds))
                    large.unlink()
        finally:
            volume.down()


if __name__ == "__main__":
    main()

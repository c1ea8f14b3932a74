"""What each mode costs a VM: the same image read and written by QEMU's block layer, as a VM's disk is,
through `gluster://` (DISK_TYPE=GLUSTER: libgfapi) and through the FUSE mount (DISK_TYPE=FILE), both
with the cache mode OpenNebula gives disks (`cache='none'`: O_DIRECT), on lab volumes set up as the
admin guide has operators run theirs (`one-gluster prepare`): a plain volume, and a replica-3 one with
gluster's virt group (sharded, strict O_DIRECT).

    .venv/bin/python benchmarks/bench_modes.py [--rounds 3] [--size-mib 1024]

`qemu-img bench` runs each case (`-t none`, native AIO on the file, gluster's own on the URI) and says
how long its I/O took, without the client's start and teardown (libgfapi takes ~10 s to disconnect on
gluster 10.3). Cases: 4 KiB reads and writes at queue depth 16, scattered over the whole image (a step
of 1 GiB + 4 KiB + 512 B, wrapping: no two requests near each other), as IOPS; 1 MiB sequential reads
and writes at depth 4, as MB/s. Rounds interleave the two modes; the medians are reported, and the
ratio FILE / GLUSTER (above 1: FUSE is faster).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

from one_gluster.admin import lab as labmod
from one_gluster.core import kvm_disk
from one_gluster.core.volume import Server

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HOST, MiB, prepare, workspace  # noqa: E402

KiB = 1 << 10
CASES = {   # name: (qemu-img bench arguments, bytes per request, unit)
    "4 KiB scattered read": (["-d", "16", "-s", "4096", "-S", str((1 << 30) + 4608), "-c", "20000"], 4096, "IOPS"),
    "4 KiB scattered write": (["-w", "-d", "16", "-s", "4096", "-S", str((1 << 30) + 4608), "-c", "20000"], 4096,
                              "IOPS"),
    "1 MiB sequential read": (["-d", "4", "-s", "1M", "-c", "512"], MiB, "MB/s"),
    "1 MiB sequential write": (["-w", "-d", "4", "-s", "1M", "-c", "512"], MiB, "MB/s"),
}


def bench(target: str, args: list[str], aio: str) -> float:
    """Seconds the I/O of one `qemu-img bench` took, as it reports them."""
    done = subprocess.run(["qemu-img", "bench", "-f", "raw", "-t", "none", "-i", aio, *args, target],
                          capture_output=True, text=True, check=True)
    return float(re.search(r"Run completed in ([0-9.]+) seconds", done.stdout).group(1))


def figure(seconds: float, args: list[str], size: int, unit: str) -> float:
    count = int(args[args.index("-c") + 1])
    return count / seconds if unit == "IOPS" else count * size / seconds / 1e6


def run_volume(volume: labmod.Lab, size_mib: int, rounds: int) -> dict[str, tuple[float, float, str]]:
    """Each case's median through gluster:// and through the mount, on one volume."""
    image = Path(volume.mount_point) / "bench.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", "-o", "preallocation=full", str(image),
                    f"{size_mib}M"], check=True)
    uri = kvm_disk.uri(f"{volume.volume}/bench.raw", Server(HOST, 24007))
    out = {}
    for name, (args, size, unit) in CASES.items():
        gfapi, fuse = [], []
        for _ in range(rounds):
            gfapi.append(figure(bench(uri, args, "threads"), args, size, unit))
            fuse.append(figure(bench(str(image), args, "native"), args, size, unit))
        out[name] = (statistics.median(gfapi), statistics.median(fuse), unit)
    image.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    with workspace(source=False) as (work, _remotes, _source):
        plain = labmod.Lab(root=str(work / "lab"), volume="ogmodes", host=HOST)
        virt = labmod.Lab(root=str(work / "lab"), volume="ogmodesv", host=HOST, replica=3)
        try:
            for volume in (plain, virt):
                volume.up()
            subprocess.run(["gluster", "--mode=script", "volume", "set", "ogmodesv", "group", "virt"], check=True,
                           capture_output=True)
            print(f"plain volume, one-gluster prepare sets: {prepare(plain)}")
            print(f"replica-3 volume: group virt, then one-gluster prepare sets: {prepare(virt) or 'nothing'}")
            print("| volume | case | gluster:// (libgfapi) | FUSE file | FILE / GLUSTER |\n|---|---|---|---|---|")
            for label, volume in (("plain", plain), ("replica 3, virt", virt)):
                for name, (gfapi, fuse, unit) in run_volume(volume, args.size_mib, args.rounds).items():
                    print(f"| {label} | {name} | {gfapi:,.0f} {unit} | {fuse:,.0f} {unit} | {fuse / gfapi:.2f} |")
        finally:
            for volume in (plain, virt):
                volume.down()


if __name__ == "__main__":
    main()

"""TM `monitor` of a system datastore with MONITOR_VM_DISKS=1 as its VMs grow in number; every figure
against a baseline of the same run.

    .venv/bin/python benchmarks/bench_monitor.py [--vms 1000 10000] [--rounds 5]

For each count N, N VM directories are laid out on a lab volume as OpenNebula leaves them: disk.0 a
clone (a file holding 64 KiB), disk.1 a link to a persistent image (one per 10 VMs), and every tenth
VM with raw snapshot copies of disk.0. The installed `monitor` runs as oned calls it (the system
datastore on stdin, monitord's address from ONE_LOCATION/etc/monitord.conf); a UDP socket stands in
for monitord and counts the datagrams and records it gets. The baseline is `du -mL` over the same
disks, one process for all (the least a shell driver could run; OpenNebula's own run one per VM).
Reported, as medians: the monitor listing every VM directory (nothing kept from a last run: the
first run on a machine, or every VM changed); the run after it once the mount's caches expired (every
VM directory as it was: the steady state of oned's monitoring, each disk's size still asked); the
baseline; their ratios; and how the steady time grows from one N to the next.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import onedsim
from one_gluster.admin import lab as labmod
from one_gluster.tm import vm_listings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HOST, timed, workspace  # noqa: E402

VOLUME = "ogmonbench"
EXPIRED = 2.0    # s: the FUSE client's and kernel's entry and attribute caches (1 s) expire, as between two runs


def lay_out(system: Path, count: int, start: int) -> None:
    """VM directories start..count-1 (those below `start` are there already)."""
    for vmid in range(start, count):
        vm_dir = system / str(vmid)
        vm_dir.mkdir()
        with open(vm_dir / "disk.0", "wb") as f:
            f.truncate(64 << 20)
            f.write(os.urandom(64 << 10))
        image = system / f"image-{vmid // 10}"
        if not image.exists():
            image.write_bytes(os.urandom(64 << 10))
        (vm_dir / "disk.1").symlink_to(image)
        if vmid % 10 == 0:
            snaps = vm_dir / "disk.0.snap"
            snaps.mkdir()
            for snap in range(2):
                (snaps / str(snap)).write_bytes(os.urandom(4 << 10))


def drain(listener: onedsim.Monitord) -> tuple[int, int, int]:
    """(messages, bytes, VM records) that reached monitord."""
    messages = listener.messages(wait=0.5)
    return len(messages), sum(m.size for m in messages), sum(len(m.vms()) for m in messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with workspace(source=False) as (work, remotes, _):
        volume = labmod.Lab(root=str(work / "lab"), volume=VOLUME, host=HOST,
                            mount_point=str(work / "datastores" / "100"))
        try:
            volume.up()
            system = Path(volume.mount_point)
            listener = onedsim.Monitord(str(work / "one"))
            cache = work / "cache"
            env = {**os.environ, **listener.env, "XDG_CACHE_HOME": str(cache)}
            stdin = onedsim.system_monitor_request(100, f"{work}/datastores/", True)
            monitor = [str(remotes / "tm/gluster/monitor"), "100"]
            du = ["sh", "-c", 'du -mL "$1"/[0-9]*/disk.* > /dev/null', "-", str(system)]
            laid, previous = 0, None
            print(f"interpreter: {sys.executable}; {os.cpu_count()} cores")
            for count in sorted(args.vms):
                lay_out(system, count, laid)
                laid = count
                time.sleep(vm_listings.RACY)        # directories changed within RACY s are never kept
                cold, warm, base = [], [], []
                for _ in range(args.rounds):
                    shutil.rmtree(cache, ignore_errors=True)
                    cold.append(timed(monitor, stdin, env)[0])
                    time.sleep(EXPIRED)
                    warm.append(timed(monitor, stdin, env)[0])
                    datagrams, size, vms = drain(listener)
                    if vms != 2 * count:
                        sys.exit(f"monitord got {vms} VM records of {2 * count}")
                    base.append(timed(du)[0])
                c, w, b = (statistics.median(times) for times in (cold, warm, base))
                growth = f"; x{w / previous[1]:.1f} the time for x{count / previous[0]:.0f} the VMs" if previous else ""
                print(f"{count} VMs: monitor {c:.2f} s listing every VM directory, {w:.2f} s with the last run's "
                      f"listings; du -mL {b:.2f} s; ratios {c / b:.2f} and {w / b:.2f}; "
                      f"{datagrams // 2} datagram(s) of {size // datagrams} bytes per run, every VM{growth}")
                previous = (count, w)
            listener.close()
        finally:
            volume.down()


if __name__ == "__main__":
    main()

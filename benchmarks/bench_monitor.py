"""TM `monitor` of a system datastore with MONITOR_VM_DISKS=1 as its VMs grow in number; every figure
against a baseline of the same run.

    .venv/bin/python benchmarks/bench_monitor.py [--vms 1000 10000] [--rounds 5]

For each count N, N VM directories are laid out on a lab volume as OpenNebula leaves them: disk.0 a
clone (a file holding 64 KiB), disk.1 a link to a persistent image (one per 10 VMs), and every tenth
VM with raw snapshot copies of disk.0. The installed `monitor` runs as oned calls it (the system
datastore on stdin, monitord's address from ONE_LOCATION/etc/monitord.conf); a UDP socket stands in
for monitord and counts the datagrams and records it gets. The baseline is `du -mL` over the same
disks, one process for all (the least a shell driver could run; OpenNebula's own run one per VM).
Reported: the median wall time of each, their ratio, and how the time grows from one N to the next.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import socket
import statistics
import sys
import zlib
from pathlib import Path

import onedsim
from one_gluster.admin import lab as labmod

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HOST, timed, workspace  # noqa: E402

VOLUME = "ogmonbench"


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


def monitord(work: Path) -> tuple[socket.socket, dict[str, str]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    sock.settimeout(0.5)
    (work / "one" / "etc").mkdir(parents=True, exist_ok=True)
    (work / "one" / "etc" / "monitord.conf").write_text(
        f'NETWORK = [\n    MONITOR_ADDRESS = "auto",\n    PORT = {sock.getsockname()[1]},\n    PUBKEY = ""\n]\n')
    return sock, {**os.environ, "ONE_LOCATION": str(work / "one")}


def drain(sock: socket.socket) -> tuple[int, int, int]:
    """(datagrams, bytes, VM records) waiting on the socket."""
    count = size = vms = 0
    while True:
        try:
            datagram = sock.recv(1 << 17)
        except socket.timeout:
            return count, size, vms
        count, size = count + 1, size + len(datagram)
        payload = zlib.decompress(base64.b64decode(datagram.split(b" ")[4])[:-1])
        vms += len(re.findall(rb"VM=\[ID=\d+,", payload))


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
            sock, env = monitord(work)
            node = onedsim.datastore(100, f"{work}/datastores//100", {"SHARED": "YES", "TYPE": "SYSTEM_DS"},
                                     name="gsys", ds_type=1)
            stdin = onedsim.request(node, extra={"DATASTORE_LOCATION": f"{work}/datastores",
                                                 "MONITOR_VM_DISKS": "1"})
            monitor = [str(remotes / "tm/gluster/monitor"), "100"]
            du = ["sh", "-c", 'du -mL "$1"/[0-9]*/disk.* > /dev/null', "-", str(system)]
            laid, previous = 0, None
            print(f"interpreter: {sys.executable}; {os.cpu_count()} cores")
            for count in sorted(args.vms):
                lay_out(system, count, laid)
                laid = count
                ours, base = [], []
                for _ in range(args.rounds):
                    ours.append(timed(monitor, stdin, env)[0])
                    datagrams, size, vms = drain(sock)
                    if vms != count:
                        sys.exit(f"monitord got {vms} VMs of {count}")
                    base.append(timed(du)[0])
                m, b = statistics.median(ours), statistics.median(base)
                growth = f"; x{m / previous[1]:.1f} the time for x{count / previous[0]:.0f} the VMs" if previous else ""
                print(f"{count} VMs: monitor {m:.2f} s, du -mL {b:.2f} s, ratio {m / b:.2f}; {datagrams} datagram(s), "
                      f"{size} bytes, every VM{growth}")
                previous = (count, m)
            sock.close()
        finally:
            volume.down()


if __name__ == "__main__":
    main()

"""`one-gluster demo`: the drivers at work on the lab volume, called exactly as oned calls them.

An image is imported by the datastore driver (`stat`, then `cp`), deployed as a VM's
non-persistent disk by the transfer manager (`clone`), and opened through libgfapi at the name
OpenNebula core gives it, as KVM would. The TM reads the VM from oned through pyone: here a
loopback XML-RPC server (`onedsim.OnedApi`) serves it, since oned itself is not part of the demo.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING, Optional, Sequence, Union

import onedsim
from one_gluster.admin import mounts
from one_gluster.admin.lab import DEFAULT_HOST, Lab
from one_gluster.core.commands import run
from one_gluster.core.errors import DriverError

if TYPE_CHECKING:
    from one_gluster.admin.pool import Pool

VOLUME = "onelab"
DEMO_DIR = "/var/tmp/one-gluster-demo"
SYSTEM_DS, IMAGE_DS = 100, 101
HOSTS = f"{DEFAULT_HOST}:24007"


def _demo_image() -> str:
    """A 256 MB qcow2 holding 8 MB of data, under /var/tmp (OpenNebula's default SAFE_DIRS)."""
    path = os.path.join(DEMO_DIR, "demo.qcow2")
    if not os.path.exists(path):
        os.makedirs(DEMO_DIR, exist_ok=True)
        raw = os.path.join(DEMO_DIR, "demo.raw")
        with open(raw, "wb") as f:
            f.truncate(256 << 20)
            f.seek(1 << 20)
            f.write(os.urandom(8 << 20))
        run("qemu-img", "convert", "-q", "-O", "qcow2", raw, path)
        os.unlink(raw)
    return path


def _staged_bytes(directory: str) -> int:
    """Bytes allocated so far by the drivers' hidden temporary files in `directory`."""
    total = 0
    for entry in os.scandir(directory):
        if entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
            try:
                total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                pass
    return total


def _run(argv: Sequence[str], payload: bytes, env: dict[str, str], watch: Optional[tuple[str, int]]) -> str:
    """Run a driver as oned does; with `watch` = (directory, expected bytes), show the copy's progress."""
    print("$ " + " ".join(argv) + ("   # base64 request on stdin" if payload else ""))
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err, env={**os.environ, **env})
        proc.stdin.write(payload)
        proc.stdin.close()
        if watch:
            _progress(proc, *watch)
        proc.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    for line in stderr.splitlines():
        print(f"  stderr: {line}")
    for line in stdout.splitlines():
        print(f"  stdout: {line}")
    print(f"  exit {proc.returncode} in {time.monotonic() - started:.2f} s")
    if proc.returncode:
        raise DriverError(f"{os.path.basename(argv[0])} failed")
    return stdout.strip()


def _progress(proc: subprocess.Popen, directory: str, expected: int) -> None:
    from tqdm import tqdm

    with tqdm(total=expected, unit="B", unit_scale=True, desc="  copying", leave=False, disable=None) as bar:
        while proc.poll() is None:
            bar.update(max(0, min(expected, _staged_bytes(directory)) - bar.n))
            time.sleep(0.2)


def _executable(remotes: str, kind: str, action: str) -> str:
    path = os.path.join(remotes, kind, "gluster", action)
    if not os.access(path, os.X_OK):
        raise DriverError(f"{path} is not installed: run install.sh first")
    return path


def _site(root: str, servers: int, stop_glusterd: bool) -> tuple[Union[Lab, "Pool"], str, str]:
    """The lab (one server) or the pool lab (`servers` servers, under ROOT/pool, as `lab up --servers`
    makes it), up, mounted as the system datastore: (it, its GLUSTER_HOST, the datastores' directory)."""
    if servers == 1:
        datastores = os.path.join(os.path.abspath(root), "datastores")
        site: Union[Lab, Pool] = Lab(root=root, volume=VOLUME, mount_point=os.path.join(datastores, str(SYSTEM_DS)))
        hosts, what = HOSTS, f"lab volume {VOLUME} on {DEFAULT_HOST}"
    else:
        from one_gluster.admin.pool import Pool

        pool_root = os.path.join(os.path.abspath(root), "pool")
        datastores = os.path.join(pool_root, "datastores")
        site = Pool(root=pool_root, volume=VOLUME, servers=servers,
                    mount_point=os.path.join(datastores, str(SYSTEM_DS)), stop_glusterd=stop_glusterd)
        hosts, what = site.hosts, f"replica-{servers} volume {VOLUME} of the pool lab ({site.hosts})"
    print(f"== {what}, FUSE-mounted at {site.mount_point} (system datastore {SYSTEM_DS})")
    site.up()
    return site, hosts, datastores


def run_demo(root: str, remotes: str, image_path: Optional[str], gfapi: bool = True, servers: int = 1,
             stop_glusterd: bool = False) -> int:
    from lxml import etree

    from one_gluster.core.kvm_disk import disk_element
    from one_gluster.core.volume import parse_servers

    site, hosts, datastores = _site(root, servers, stop_glusterd)
    system, images = (os.path.join(datastores, str(i)) for i in (SYSTEM_DS, IMAGE_DS))
    if not os.path.lexists(images):
        os.symlink(str(SYSTEM_DS), images)
    print(f"== image datastore {IMAGE_DS}: {images} -> {SYSTEM_DS} (images and VM directories share the volume root)")
    path = image_path or _demo_image()
    gluster = {"GLUSTER_HOST": hosts, "GLUSTER_VOLUME": VOLUME}
    ds = onedsim.datastore(IMAGE_DS, f"{datastores}//{IMAGE_DS}",
                           {**gluster, "SAFE_DIRS": "/var/tmp", "RESTRICTED_DIRS": "/"})
    datastore_driver = lambda action: [_executable(remotes, "datastore", action), "0"]

    print(f"\n== oneimage create --path {path}: oned calls the datastore driver's stat, then cp")
    size_mb = int(_run(datastore_driver("stat"), onedsim.request(ds, onedsim.stat_image(path)), {}, None))
    expected = os.stat(path).st_blocks * 512 if os.path.exists(path) else size_mb << 20
    request = onedsim.request(ds, onedsim.image(0, path=path, size_mb=size_mb))
    source, fmt = _run(datastore_driver("cp"), request, {}, (system, expected)).split()
    print(run("qemu-img", "info", "-U", source).rstrip())

    vmid = next(i for i in range(10_000) if not os.path.lexists(os.path.join(system, str(i))))
    disk = onedsim.image_disk(0, image_id=0, source=source, fmt=fmt, size_mb=size_mb, volume=VOLUME, hosts=hosts)
    print(f"\n== onevm deploy of VM {vmid} with the image as a non-persistent disk: oned calls the TM's clone")
    print(f"   (the TM reads VM {vmid} through pyone; a loopback XML-RPC server stands in for oned)")
    with onedsim.OnedApi() as api, tempfile.NamedTemporaryFile("w", suffix=".auth") as auth:
        auth.write(api.session + "\n")
        auth.flush()
        api.vms[vmid] = onedsim.vm(vmid, [disk], state=3, lcm_state=1, hostname="localhost")
        api.datastores[IMAGE_DS] = ds
        api.datastores[SYSTEM_DS] = onedsim.datastore(SYSTEM_DS, f"{datastores}//{SYSTEM_DS}",
                                                      {**gluster, "SHARED": "YES", "TYPE": "SYSTEM_DS"},
                                                      name="gsys", ds_type=1)
        target = f"localhost:{datastores}//{SYSTEM_DS}/{vmid}/disk.0"
        clone = [_executable(remotes, "tm", "clone"), f"fe:{source}", target, str(vmid), str(IMAGE_DS)]
        _run(clone, b"", {"ONE_XMLRPC": api.endpoint, "ONE_AUTH": auth.name}, None)
    print(run("qemu-img", "info", "-U", os.path.join(system, str(vmid), "disk.0")).rstrip())

    name = f"{VOLUME}/{vmid}/disk.0"
    print("\n== the disk as OpenNebula core hands it to libvirt (CLONE=YES: GLUSTER_VOLUME/<vmid>/disk.<i>)")
    element = disk_element(name, parse_servers(hosts), "qcow2", target="sda")
    print(etree.tostring(element, pretty_print=True, encoding="unicode").rstrip())
    if gfapi:
        uri = f"gluster://{parse_servers(hosts)[0].host}/{name}"
        print(f"\n== opened through libgfapi as KVM opens it, with its backing image ({uri}; about 10 s)")
        print(run("qemu-img", "info", "--backing-chain", uri).rstrip())

    monitor = [_executable(remotes, "datastore", "monitor"), str(IMAGE_DS)]
    print("\n== datastore monitor")
    _run(monitor, onedsim.request(ds), {}, None)
    if servers > 1:
        _failover(site, name, monitor, onedsim.request(ds), gfapi)
    return 0


def _failover(pool: "Pool", name: str, monitor: list[str], request: bytes, gfapi: bool) -> None:
    """Server 1 of the pool fails: the mount and the drivers go on, QEMU opens the disk through the
    next server; it comes back, and self-heal copies to it what was written meanwhile."""
    lost = pool.first
    print(f"\n== server {lost.address} fails: its glusterd and brick are killed")
    lost.lose()
    print(f"   the mount serves on through the other bricks ({mounts.state(pool.mount_point)}), and the drivers "
          "work as before:")
    _run(monitor, request, {}, None)
    if gfapi:
        servers = [{"type": "inet", "host": s.address, "port": "24007"} for s in pool.members]
        spec = {"driver": "qcow2",
                "file": {"driver": "gluster", "volume": VOLUME, "path": name.partition("/")[2], "server": servers}}
        print(f"\n== opened through libgfapi with every server a <host>, as core's <disk> lists them (about "
              f"25 s: the dead {lost.address} is tried first)")
        print(run("qemu-img", "info", "json:" + json.dumps(spec)).rstrip())
    with open(os.path.join(pool.mount_point, f"written-while-{lost.address}-was-down"), "wb") as f:
        f.write(os.urandom(1 << 20))
    print(f"\n== server {lost.address} comes back; self-heal copies to its brick what was written meanwhile "
          f"(entries to heal: {pool.heal_pending()})")
    pool.restore(lost)
    started = time.monotonic()
    while pending := pool.heal_pending():
        print(f"   entries to heal: {pending}")
        if time.monotonic() - started > 300:
            raise DriverError(f"self-heal left {pending} entries after 300 s")
        time.sleep(2)
    print(f"   entries to heal: 0, after {time.monotonic() - started:.0f} s (on a real pool: gluster volume heal "
          f"{VOLUME} info)")

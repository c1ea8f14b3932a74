"""`one-gluster demo`: the drivers at work on the lab volume, called exactly as oned calls them.

An image is imported by the datastore driver (`stat`, then `cp`), deployed as a VM's
non-persistent disk by the transfer manager (`clone`), and opened through libgfapi at the name
OpenNebula core gives it, as KVM would. The TM reads the VM from oned through pyone: here a
loopback XML-RPC server (`onedsim.OnedApi`) serves it, since oned itself is not part of the demo.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from typing import Optional, Sequence

import onedsim
from one_gluster.admin.lab import DEFAULT_HOST, Lab
from one_gluster.core.commands import run
from one_gluster.core.errors import DriverError

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


def run_demo(root: str, remotes: str, image_path: Optional[str], gfapi: bool = True) -> int:
    from lxml import etree

    from one_gluster.core.kvm_disk import disk_element
    from one_gluster.core.volume import parse_servers

    datastores = os.path.join(os.path.abspath(root), "datastores")
    system, images = (os.path.join(datastores, str(i)) for i in (SYSTEM_DS, IMAGE_DS))
    lab = Lab(root=root, volume=VOLUME, mount_point=system)
    print(f"== lab volume {VOLUME} on {DEFAULT_HOST}, FUSE-mounted at {system} (system datastore {SYSTEM_DS})")
    lab.up()
    if not os.path.lexists(images):
        os.symlink(str(SYSTEM_DS), images)
    print(f"== image datastore {IMAGE_DS}: {images} -> {SYSTEM_DS} (images and VM directories share the volume root)")
    path = image_path or _demo_image()
    gluster = {"GLUSTER_HOST": HOSTS, "GLUSTER_VOLUME": VOLUME}
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
    disk = onedsim.image_disk(0, image_id=0, source=source, fmt=fmt, size_mb=size_mb, volume=VOLUME, hosts=HOSTS)
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
    element = disk_element(name, parse_servers(HOSTS), "qcow2", target="sda")
    print(etree.tostring(element, pretty_print=True, encoding="unicode").rstrip())
    if gfapi:
        uri = f"gluster://{DEFAULT_HOST}/{name}"
        print(f"\n== opened through libgfapi as KVM opens it, with its backing image ({uri}; about 10 s)")
        print(run("qemu-img", "info", "--backing-chain", uri).rstrip())

    print("\n== datastore monitor")
    _run([_executable(remotes, "datastore", "monitor"), str(IMAGE_DS)], onedsim.request(ds), {}, None)
    return 0

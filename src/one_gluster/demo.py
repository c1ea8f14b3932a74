"""`one-gluster demo`: the drivers at work on the lab volume, called exactly as oned calls them."""

from __future__ import annotations

import os
import time

from . import onedsim
from .commands import run
from .errors import DriverError
from .lab import DEFAULT_HOST, Lab

VOLUME = "onelab"
DEMO_DIR = "/var/tmp/one-gluster-demo"


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


def _call(remotes: str, action: str, object_id: int, payload: bytes) -> str:
    executable = os.path.join(remotes, "datastore", "gluster", action)
    if not os.access(executable, os.X_OK):
        raise DriverError(f"{executable} is not installed: run install.sh first")
    print(f"$ {executable} {object_id}   # base64 DS_DRIVER_ACTION_DATA on stdin")
    started = time.monotonic()
    done = onedsim.call(executable, object_id, payload)
    for line in done.stderr.decode(errors="replace").splitlines():
        print(f"  stderr: {line}")
    for line in done.stdout.decode(errors="replace").splitlines():
        print(f"  stdout: {line}")
    print(f"  exit {done.returncode} in {time.monotonic() - started:.2f} s")
    if done.returncode:
        raise DriverError(f"the {action} action failed")
    return done.stdout.decode().strip()


def run_demo(root: str, remotes: str, image_path: str | None, gfapi: bool = True) -> int:
    datastores = os.path.join(os.path.abspath(root), "datastores")
    lab = Lab(root=root, volume=VOLUME, mount_point=os.path.join(datastores, "100"))
    print(f"== lab volume {VOLUME} on {DEFAULT_HOST}, FUSE-mounted at {lab.mount_point} (system datastore 100)")
    lab.up()
    if not os.path.lexists(os.path.join(datastores, "101")):
        os.symlink("100", os.path.join(datastores, "101"))
    print(f"== image datastore 101: {datastores}/101 -> 100 (images and VM directories share the volume root)")
    path = image_path or _demo_image()
    template = {"GLUSTER_HOST": f"{DEFAULT_HOST}:24007", "GLUSTER_VOLUME": VOLUME,
                "SAFE_DIRS": "/var/tmp", "RESTRICTED_DIRS": "/"}
    ds = onedsim.datastore(101, f"{datastores}//101", template)

    print(f"\n== oneimage create --path {path}: oned calls stat, then cp")
    size_mb = int(_call(remotes, "stat", 0, onedsim.request(ds, onedsim.stat_image(path))))
    source, fmt = _call(remotes, "cp", 0, onedsim.request(ds, onedsim.image(0, path=path, size_mb=size_mb))).split()

    print("\n== the image on the FUSE mount")
    print(run("qemu-img", "info", "-U", source).rstrip())
    name = f"{VOLUME}/{os.path.basename(source)}"
    if gfapi:
        uri = f"gluster://{DEFAULT_HOST}/{name}"
        print(f"\n== the same image through libgfapi, as KVM opens it ({uri}; about 10 s)")
        print(run("qemu-img", "info", uri).rstrip())
    print(f"\n== OpenNebula core names this {fmt} image {name!r} in the VM's <source protocol='gluster'>")

    print("\n== datastore monitor")
    _call(remotes, "monitor", 101, onedsim.request(ds))
    return 0

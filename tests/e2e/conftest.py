"""End-to-end fixtures: the test volumes a VM's whole life runs on."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from one_gluster.admin import lab as labmod
from support.domains import URI, virsh
from support.drivers import ImageDatastore, TransferManager
from support.labs import SITES


@pytest.fixture(scope="module")
def site(request) -> tuple[labmod.Lab, ImageDatastore, TransferManager, Path]:
    """(lab, image datastore, TM, where sources go) of the site `request.param` names in SITES: the volume
    as created, the replica-3 one tuned with gluster's virt group (sharded), or the one owned by oneadmin.
    A test names its sites with `@pytest.mark.parametrize("site", [...], indirect=True)`."""
    lab, ds, tm, sources = (request.getfixturevalue(name) for name in SITES[request.param])
    return lab, ds, tm, getattr(sources, "sources", sources)


@pytest.fixture(scope="session")
def libvirtd():
    """libvirtd (and virtlogd) for the session: started here when not running, stopped after."""
    if not shutil.which("libvirtd") or not shutil.which("qemu-system-x86_64"):
        pytest.skip("libvirtd or qemu-system-x86_64 is not installed")
    started = []
    if virsh("version", check=False).returncode != 0:
        for daemon in ("virtlogd", "libvirtd"):
            if subprocess.run(["pgrep", "-x", daemon], capture_output=True).returncode != 0:
                subprocess.run([daemon, "-d"], check=True)
                started.append(daemon)
        deadline = time.monotonic() + 60
        while virsh("version", check=False).returncode != 0:
            if time.monotonic() > deadline:
                pytest.skip(f"libvirtd did not answer on {URI} within 60 s: "
                            f"{virsh('version', check=False).stderr.strip()}")
            time.sleep(1)
    yield
    for daemon in reversed(started):
        subprocess.run(["pkill", "-x", daemon], check=False)
        deadline = time.monotonic() + 30      # gone before the next session looks for a running one
        while subprocess.run(["pgrep", "-x", daemon], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, f"{daemon} did not stop"
            time.sleep(0.2)

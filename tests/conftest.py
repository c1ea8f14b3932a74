"""The fixtures of every tier: the installed drivers, the real loopback gluster volumes (the volume as
created, a replica-3 one tuned with gluster's virt group, one owned by oneadmin), and oned's way of
calling the drivers.

oned itself is the one component no registry ships: the tests call the installed driver
executables exactly as oned 6.8+ does (`<action> <id>`, the base64 DS_DRIVER_ACTION_DATA on
stdin, documents with the fields and order of the captured fixtures, built by `onedsim`), and a
loopback stand-in answers the XML-RPC calls pyone makes from the TM actions. What the fixtures are
made of lives in `support/`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

import onedsim
from one_gluster.admin import lab as labmod, mounts
from one_gluster.core import gluster
from support.drivers import Home, ImageDatastore, TransferManager, image_datastore, transfer_manager
from support.labs import ONEADMIN, OWNED, VIRT, VOLUME, datastore_volume, install_drivers
from support.net import serve
from support.system import wait_for


@pytest.fixture(scope="session")
def remotes(tmp_path_factory) -> Path:
    return install_drivers(tmp_path_factory.mktemp("remotes"))


@pytest.fixture(scope="session")
def glusterd():
    """glusterd for the session: started if it does not run, and then stopped again."""
    started = labmod.start_glusterd()
    yield
    if started:
        labmod.stop_glusterd()


@pytest.fixture(scope="session")
def lab(tmp_path_factory, glusterd) -> Iterator[labmod.Lab]:
    """The test volume, FUSE-mounted as system datastore 100, image datastore 101 a symlink to it."""
    with datastore_volume(tmp_path_factory.mktemp("lab"), VOLUME, 100) as volume:
        yield volume


@pytest.fixture(scope="session")
def sources_dir(tmp_path_factory) -> Path:
    """Where test images come from: the datastore's only SAFE_DIRS entry."""
    return tmp_path_factory.mktemp("sources")


@pytest.fixture(scope="session")
def http_root(sources_dir):
    """A loopback HTTP server serving the sources directory."""
    server = serve(sources_dir)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def ds(lab, remotes, sources_dir) -> ImageDatastore:
    return image_datastore(lab, remotes, sources_dir, 101)


@pytest.fixture(scope="session")
def oned() -> Iterator[onedsim.OnedApi]:
    """oned's XML-RPC API on loopback, serving VM and datastore documents in oned's format (no registry
    ships oned: this stand-in answers the calls pyone makes from the TM actions)."""
    with onedsim.OnedApi("oneadmin:opennebula") as api:
        yield api


@pytest.fixture
def monitord(tmp_path) -> Iterator[onedsim.Monitord]:
    """monitord's UDP socket on loopback and the ONE_LOCATION whose monitord.conf names it (stand-in: no
    registry ships monitord)."""
    listener = onedsim.Monitord(str(tmp_path / "one"))
    yield listener
    listener.close()


@pytest.fixture(scope="session", autouse=True)
def cache_home(tmp_path_factory) -> Iterator[Path]:
    """The drivers' cache directory (XDG_CACHE_HOME: the TM monitor keeps its listings there) for the
    session, so that nothing lands in this machine's home."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield Path(os.environ["XDG_CACHE_HOME"])
    if before is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(scope="session")
def auth_file(tmp_path_factory) -> str:
    auth = tmp_path_factory.mktemp("one") / "one_auth"
    auth.write_text("oneadmin:opennebula\n")
    return str(auth)


@pytest.fixture(scope="session")
def tm(lab, remotes, oned, auth_file) -> TransferManager:
    return transfer_manager(lab, remotes, oned, auth_file, 100)


@pytest.fixture(scope="session")
def virt_lab(tmp_path_factory, glusterd) -> Iterator[labmod.Lab]:
    """A second test volume as operators run one for VM images: replica 3 (three bricks on the lab's
    one host) tuned with gluster's own option group (`gluster volume set VOL group virt`), which turns
    sharding on: files are cut into 64 MiB shards and holes cannot be seen through the mount; O_DIRECT
    is strict. FUSE-mounted as system datastore 200, image datastore 201 a symlink to it."""
    with datastore_volume(tmp_path_factory.mktemp("virt"), VIRT, 200, replica=3) as volume:
        subprocess.run(["gluster", "--mode=script", "volume", "set", VIRT, "group", "virt"],
                       check=True, capture_output=True)
        mounts.unmount(volume.mount_point)          # mounted again with the new options in its graph
        volume.mount()
        yield volume


@pytest.fixture(scope="session")
def virt_ds(virt_lab, remotes, sources_dir) -> ImageDatastore:
    return image_datastore(virt_lab, remotes, sources_dir, 201)


@pytest.fixture(scope="session")
def virt_tm(virt_lab, remotes, oned, auth_file) -> TransferManager:
    return transfer_manager(virt_lab, remotes, oned, auth_file, 200)


@pytest.fixture(scope="session")
def owned_lab(glusterd) -> Iterator[labmod.Lab]:
    """A third test volume, on which the drivers run as they do on a front-end: as oneadmin (uid and gid
    9869, no other group). Its files belong to oneadmin (`storage.owner-uid/gid`, as `one-gluster
    prepare` sets them). It lives in a directory of /var/tmp that any user can traverse (pytest's own
    are root's only). FUSE-mounted as system datastore 300, image datastore 301 a symlink to it."""
    try:
        subprocess.run([sys.executable, "-c", "pass"], check=True, capture_output=True, **onedsim.as_user(ONEADMIN))
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"uid {ONEADMIN} cannot run the test interpreter {sys.executable}: a directory above it "
                    "is closed to other users")
    root = Path(tempfile.mkdtemp(prefix="one-gluster-oneadmin-", dir="/var/tmp"))
    root.chmod(0o755)
    try:
        with datastore_volume(root, OWNED, 300) as volume:
            gluster.set_options(OWNED, {"storage.owner-uid": str(ONEADMIN), "storage.owner-gid": str(ONEADMIN)})
            assert wait_for(lambda: os.stat(volume.mount_point).st_uid == ONEADMIN, 10)
            yield volume
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def owned_home(owned_lab) -> Home:
    root = Path(owned_lab.root)
    remotes = install_drivers(root / "remotes")
    sources = root / "sources"
    sources.mkdir(mode=0o755)
    auth = root / "one_auth"
    auth.write_text("oneadmin:opennebula\n")
    os.chown(auth, ONEADMIN, ONEADMIN)
    auth.chmod(0o600)
    return Home(remotes, sources, str(auth))


@pytest.fixture(scope="session")
def owned_ds(owned_lab, owned_home) -> ImageDatastore:
    return image_datastore(owned_lab, owned_home.remotes, owned_home.sources, 301, ONEADMIN)


@pytest.fixture(scope="session")
def owned_tm(owned_lab, owned_home, oned) -> TransferManager:
    return transfer_manager(owned_lab, owned_home.remotes, oned, owned_home.auth_file, 300, ONEADMIN)


@pytest.fixture(scope="session")
def vm_ids():
    """A fresh VM id for each test that deploys one."""
    return iter(range(10, 10_000))

"""Shared fixtures: the installed drivers, the real loopback gluster volume, and oned's way of calling.

oned itself is the one component no registry ships: the tests call the installed driver
executables exactly as oned 6.8+ does (`<action> <id>`, the base64 DS_DRIVER_ACTION_DATA on
stdin, documents with the fields and order of the captured fixtures, built by `onedsim`).
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import pytest

from one_gluster import gluster, lab as labmod
from one_gluster import mounts, onedsim

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "opennebula-7.5"     # documents captured from a real oned 7.5
HOST = "127.0.1.1"
VOLUME = "ogtest"
VIRT = "ogvirt"
OWNED = "ogowned"
ONEADMIN = 9869          # oneadmin's uid and gid in OpenNebula's packages: who runs the drivers on a front-end
MiB = 1 << 20


@pytest.fixture(scope="session")
def fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"The captured OpenNebula documents are missing: {FIXTURES}")
    return FIXTURES


def install_drivers(root: Path) -> Path:
    """The drivers installed by install.sh into the remotes tree `root`, running with this interpreter (a
    self-contained ONE_LOCATION, so that nothing lands in the machine's /usr/share or /etc/one)."""
    subprocess.run([str(REPO / "install.sh"), "--no-packages", "--python", sys.executable, "--remotes", str(root)],
                   check=True, capture_output=True, env={**os.environ, "ONE_LOCATION": str(root / "one")})
    return root


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


@contextmanager
def datastore_volume(root: Path, volume: str, system_ds: int, replica: int = 1) -> Iterator[labmod.Lab]:
    """A lab volume with its bricks under `root`, FUSE-mounted as system datastore `system_ds` in
    `root/datastores`, the image datastore (the next id) a symlink to it; torn down after, also when
    bringing it up fails."""
    datastores = root / "datastores"
    lab = labmod.Lab(root=str(root), volume=volume, host=HOST, replica=replica,
                     mount_point=str(datastores / str(system_ds)))
    try:
        lab.up()
        (datastores / str(system_ds + 1)).symlink_to(str(system_ds))
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="session")
def lab(tmp_path_factory, glusterd) -> Iterator[labmod.Lab]:
    """The test volume, FUSE-mounted as system datastore 100, image datastore 101 a symlink to it."""
    with datastore_volume(tmp_path_factory.mktemp("lab"), VOLUME, 100) as volume:
        yield volume


@dataclass
class Called:
    returncode: int
    stdout: str
    stderr: str

    @property
    def plain_errors(self) -> list[str]:
        """stderr lines oned turns into the object's ERROR (those without a log prefix)."""
        return [line for line in self.stderr.splitlines()
                if not line.startswith(("INFO:", "ERROR:", "WARN:", "DEBUG:"))]


@dataclass
class ImageDatastore:
    """Datastore 101 as oned describes it, and the way oned calls its driver."""

    remotes: Path
    base_path: str
    template: dict[str, str] = field(default_factory=dict)
    ds_id: int = 101
    user: Optional[int] = None     # the uid and gid the driver runs as (None: root, as this process)

    @property
    def directory(self) -> Path:
        return Path(os.path.realpath(self.base_path))

    def node(self, ds_type: int = 0, **overrides: str):
        return onedsim.datastore(self.ds_id, self.base_path, {**self.template, **overrides}, ds_type=ds_type)

    def call(self, action: str, image=None, object_id: int = 0, ds_template: Optional[dict] = None,
             extra: Optional[dict] = None, env: Optional[dict] = None, ds_type: int = 0) -> Called:
        payload = onedsim.request(self.node(ds_type, **(ds_template or {})), image, extra)
        done = onedsim.call(str(self.remotes / "datastore" / "gluster" / action), object_id, payload, env, self.user)
        return Called(done.returncode, done.stdout.decode(), done.stderr.decode())

    def ok(self, action: str, image=None, **kwargs) -> str:
        result = self.call(action, image, **kwargs)
        assert result.returncode == 0, f"{action} failed: {result.stderr}"
        return result.stdout

    def entries(self) -> set[str]:
        """Every name in the datastore directory, hidden staging files included."""
        return set(os.listdir(self.directory))


@pytest.fixture(scope="session")
def sources_dir(tmp_path_factory) -> Path:
    """Where test images come from: the datastore's only SAFE_DIRS entry."""
    return tmp_path_factory.mktemp("sources")


def _image_datastore(lab: labmod.Lab, remotes: Path, sources_dir: Path, ds_id: int,
                     user: Optional[int] = None) -> ImageDatastore:
    base = f"{Path(lab.mount_point).parent}//{ds_id}"    # oned's BASE_PATH keeps the double slash
    template = {"GLUSTER_HOST": f"{HOST}:24007", "GLUSTER_VOLUME": lab.volume,
                "SAFE_DIRS": f"{sources_dir}/", "RESTRICTED_DIRS": "/"}
    return ImageDatastore(remotes, base, template, ds_id, user)


def serve(directory: Optional[Path], tls: Optional[ssl.SSLContext] = None,
          handler: Optional[type] = None) -> http.server.ThreadingHTTPServer:
    """A loopback HTTP(S) server for `directory` (or answering with `handler`), running until shut down."""
    if handler is None:
        handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(directory), **kw)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="session")
def http_root(sources_dir):
    """A loopback HTTP server serving the sources directory."""
    server = serve(sources_dir)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def ds(lab, remotes, sources_dir) -> ImageDatastore:
    return _image_datastore(lab, remotes, sources_dir, 101)


def qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True).stdout


def qemu_io(path: str, command: str, fmt: str = "qcow2", user: Optional[int] = None) -> str:
    """`qemu-io -c command` on the image at `path`, as uid and gid `user` where given (QEMU's user)."""
    done = subprocess.run(["qemu-io", "-f", fmt, "-c", command, path], capture_output=True, text=True,
                          **onedsim.as_user(user))
    return done.stdout + done.stderr


def reads_pattern(path, byte: object, offset: object = 0, length: object = "64k", fmt: str = "qcow2",
                  user: Optional[int] = None) -> bool:
    """Whether the guest reads byte `byte` over `length` bytes at `offset` of the image at `path`
    (`qemu-io read -P`, as uid and gid `user` where given); an image that cannot be read fails the test."""
    out = qemu_io(str(path), f"read -P {byte} {offset} {length}", fmt, user)
    assert "bytes at offset" in out, out
    return "Pattern verification failed" not in out


def held_extents(path: Path) -> list[tuple[int, int]]:
    """(start, length) of each extent the image itself holds, not its backing file (qemu-img map)."""
    return [(e["start"], e["length"]) for e in json.loads(qemu_img("map", "--output=json", str(path)))
            if e["present"] and e["depth"] == 0]


def bitmaps(path: Path) -> list[str]:
    """The names of the persistent dirty bitmaps a qcow2 image holds."""
    info = json.loads(qemu_img("info", "--output=json", "-U", str(path)))
    return sorted(b["name"] for b in info["format-specific"]["data"].get("bitmaps", []))


def restored(archive: Path, work: Path, disk_id: int, last: int) -> Path:
    """The disk as a restore rebuilds it from the backup files kept in `archive`: each increment
    rebased onto the one before, down to the full backup."""
    work.mkdir()
    for n in range(last + 1):
        shutil.copy(archive / f"disk.{disk_id}.{n}", work)
        if n:
            qemu_img("rebase", "-u", "-F", "qcow2", "-b", f"disk.{disk_id}.{n - 1}", str(work / f"disk.{disk_id}.{n}"))
    return work / f"disk.{disk_id}.{last}"


def make_raw(path: Path, size: int, data: dict[int, bytes]) -> Path:
    """A sparse raw image of `size` bytes holding `data` at the given offsets."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, chunk in data.items():
            f.seek(offset)
            f.write(chunk)
    return path


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def wait_for(predicate, seconds: float, poll: float = 0.5) -> bool:
    """Whether `predicate()` comes true within `seconds`, asked every `poll` seconds."""
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(poll)
    return predicate()


def which(tool: str) -> bool:
    return shutil.which(tool) is not None


@pytest.fixture(scope="session")
def oned() -> Iterator[onedsim.OnedApi]:
    """oned's XML-RPC API on loopback, serving VM and datastore documents in oned's format (no registry
    ships oned: this stand-in answers the calls pyone makes from the TM actions)."""
    with onedsim.OnedApi("oneadmin:opennebula") as api:
        yield api


@dataclass
class TransferManager:
    """The TM driver as oned runs it: `remotes/tm/gluster/<action> args...`, stdin only where oned gives one."""

    remotes: Path
    api: onedsim.OnedApi
    location: str          # DATASTORE_LOCATION, with the double slash oned keeps
    auth_file: str         # ONE_AUTH: oneadmin's credentials
    host: str = "127.0.0.1"
    volume: str = VOLUME
    system_ds: int = 100   # the image datastore is the next id, a symlink to the same directory
    user: Optional[int] = None     # the uid and gid the driver runs as (None: root, as this process)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "ONE_XMLRPC": self.api.endpoint, "ONE_AUTH": self.auth_file}

    def call(self, action: str, *args: object, stdin: bytes = b"", env: Optional[dict] = None) -> Called:
        done = subprocess.run([str(self.remotes / "tm" / "gluster" / action), *map(str, args)], input=stdin,
                              capture_output=True, env={**self.env, **(env or {})}, check=False,
                              **onedsim.as_user(self.user))
        return Called(done.returncode, done.stdout.decode(), done.stderr.decode())

    def ok(self, action: str, *args: object, **kwargs) -> Called:
        result = self.call(action, *args, **kwargs)
        assert result.returncode == 0, f"{action} failed: {result.stderr}"
        return result

    def disk(self, vmid: int, disk_id: int) -> str:
        """`host:<sys>/<vmid>/disk.<i>` as oned writes the destination."""
        return f"{self.host}:{self.location}/{self.system_ds}/{vmid}/disk.{disk_id}"

    @property
    def image_ds(self) -> int:
        return self.system_ds + 1

    def real(self, vmid: int, disk_id: Optional[int] = None) -> Path:
        vm_dir = Path(os.path.realpath(f"{self.location}/{self.system_ds}")) / str(vmid)
        return vm_dir if disk_id is None else vm_dir / f"disk.{disk_id}"


@pytest.fixture(scope="session")
def auth_file(tmp_path_factory) -> str:
    auth = tmp_path_factory.mktemp("one") / "one_auth"
    auth.write_text("oneadmin:opennebula\n")
    return str(auth)


def _transfer_manager(lab: labmod.Lab, remotes: Path, oned: onedsim.OnedApi, auth_file: str,
                      system_ds: int, user: Optional[int] = None) -> TransferManager:
    """The TM of `lab`'s system datastore, with its image datastore registered in oned's stand-in."""
    location = str(Path(lab.mount_point).parent) + "/"
    gluster = {"GLUSTER_HOST": f"{HOST}:24007", "GLUSTER_VOLUME": lab.volume}
    oned.datastores[system_ds] = onedsim.datastore(system_ds, f"{location}/{system_ds}", {
        **gluster, "SHARED": "YES", "TYPE": "SYSTEM_DS"}, name="gsys", ds_type=1)
    oned.datastores[system_ds + 1] = onedsim.datastore(system_ds + 1, f"{location}/{system_ds + 1}", gluster)
    return TransferManager(remotes, oned, location, auth_file, volume=lab.volume, system_ds=system_ds, user=user)


@pytest.fixture(scope="session")
def tm(lab, remotes, oned, auth_file) -> TransferManager:
    return _transfer_manager(lab, remotes, oned, auth_file, 100)


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
    return _image_datastore(virt_lab, remotes, sources_dir, 201)


@pytest.fixture(scope="session")
def virt_tm(virt_lab, remotes, oned, auth_file) -> TransferManager:
    return _transfer_manager(virt_lab, remotes, oned, auth_file, 200)


@dataclass
class Home:
    """What the drivers' user needs beside the owned volume, in directories it can reach."""
    remotes: Path          # the drivers, installed by install.sh
    sources: Path          # where images come from (SAFE_DIRS)
    auth_file: str         # ONE_AUTH, oneadmin's own


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
    return _image_datastore(owned_lab, owned_home.remotes, owned_home.sources, 301, ONEADMIN)


@pytest.fixture(scope="session")
def owned_tm(owned_lab, owned_home, oned) -> TransferManager:
    return _transfer_manager(owned_lab, owned_home.remotes, oned, owned_home.auth_file, 300, ONEADMIN)


# The test volumes an end-to-end test runs on: (lab, image datastore, TM, where sources go) by fixture name.
SITES = {"plain": ("lab", "ds", "tm", "sources_dir"),
         "replica-3-virt": ("virt_lab", "virt_ds", "virt_tm", "sources_dir"),
         "as-oneadmin": ("owned_lab", "owned_ds", "owned_tm", "owned_home")}


@pytest.fixture
def site(request) -> tuple[labmod.Lab, ImageDatastore, TransferManager, Path]:
    """(lab, image datastore, TM, where sources go) of the site `request.param` names in SITES: the volume
    as created, the replica-3 one tuned with gluster's virt group (sharded), or the one owned by oneadmin.
    A test names its sites with `@pytest.mark.parametrize("site", [...], indirect=True)`."""
    lab, ds, tm, sources = (request.getfixturevalue(name) for name in SITES[request.param])
    return lab, ds, tm, getattr(sources, "sources", sources)


def shard_owners(lab: labmod.Lab) -> set[str]:
    """The gfids of the files that have shards on `lab`'s bricks (`.shard/<gfid>.<n>`: each file's
    blocks after its first 64 MiB)."""
    return {p.name.split(".")[0] for brick in lab.bricks for p in Path(brick, ".shard").glob("*-*.*")}


def volume_path(lab: labmod.Lab, path) -> str:
    """The name of the file at `path` on `lab`'s mount inside the volume (relative to its root)."""
    return os.path.relpath(os.path.realpath(path), os.path.realpath(lab.mount_point))


def brick_path(lab: labmod.Lab, path, brick: int = 0) -> Path:
    """Where the file at `path` on `lab`'s mount lies on one of its bricks (its first shard, where the
    volume is sharded): the volume's own bytes, which no client caches."""
    return Path(lab.bricks[brick], volume_path(lab, path))


def gfid(lab: labmod.Lab, path: str) -> str:
    """The gfid of the file at `path` on `lab`'s mount, as its brick records it."""
    return str(uuid.UUID(bytes=os.getxattr(brick_path(lab, path), "trusted.gfid")))


@pytest.fixture(scope="session")
def vm_ids():
    """A fresh VM id for each test that deploys one."""
    return iter(range(10, 10_000))


def imported(ds, sources_dir: Path, name: str, fmt: str, size_mb: int = 32, data_mb: int = 1) -> tuple[str, bytes]:
    """An image imported by the DS driver: (SOURCE, its first MiB); `data_mb` more of data from its middle."""
    head = os.urandom(MiB)
    raw = make_raw(sources_dir / f"{name}.raw", size_mb * MiB, {0: head, size_mb // 2 * MiB: os.urandom(data_mb * MiB)})
    path = raw
    if fmt == "qcow2":
        path = sources_dir / f"{name}.qcow2"
        qemu_img("convert", "-O", "qcow2", str(raw), str(path))
    source, got = ds.ok("cp", onedsim.image(0, path=str(path))).split()
    assert got == fmt
    return source, head


def deploy(tm, vmid: int, *disks: dict, lcm_state: int = 3, deploy_id: str = "") -> None:
    tm.api.vms[vmid] = onedsim.vm(vmid, disks, lcm_state=lcm_state, deploy_id=deploy_id, system_ds=tm.system_ds)


def gluster_disk(disk_id: int, source: str, fmt: str, size_mb: int = 32, volume: str = VOLUME, **kw) -> dict:
    return onedsim.image_disk(disk_id, image_id=disk_id, source=source, fmt=fmt, size_mb=size_mb, volume=volume,
                              hosts=f"{HOST}:24007", **kw)


def gfapi_differences(pairs: list[tuple[str, Path, str]], user: Optional[int] = None) -> list[str]:
    """Open each `gluster://` URI through libgfapi and compare it with the FUSE path, as `fmt`: what KVM
    reads against what the drivers wrote, as uid and gid `user` where given (QEMU's user). ~10 s per
    open here (glfs_fini), so all run side by side. Returns one line per pair that differs (empty: all
    identical)."""
    def compare(pair: tuple[str, Path, str]) -> subprocess.CompletedProcess:
        uri, path, fmt = pair
        return subprocess.run(["qemu-img", "compare", "-U", "-f", fmt, "-F", fmt, uri, str(path)],
                              capture_output=True, text=True, **onedsim.as_user(user))

    with ThreadPoolExecutor(len(pairs)) as pool:
        results = list(pool.map(compare, pairs))
    return [f"{uri} vs {path}: {done.stdout.strip()} {done.stderr.strip()[-300:]}"
            for (uri, path, _), done in zip(pairs, results)
            if done.returncode != 0 or "Images are identical" not in done.stdout]

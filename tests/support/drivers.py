"""The drivers as oned calls them: the image datastore (DS driver) and the transfer manager of a test
volume, with the documents of oned's stand-in (`onedsim`), and the VMs and images the tests deploy."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import onedsim
from one_gluster.admin import lab as labmod
from support.images import MiB, make_raw, qemu_img
from support.labs import HOST, VOLUME


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


LAB_HOSTS = f"{HOST}:24007"     # GLUSTER_HOST of the single-server test volumes


def image_datastore(lab: labmod.Lab, remotes: Path, sources_dir: Path, ds_id: int,
                    user: Optional[int] = None, hosts: str = LAB_HOSTS) -> ImageDatastore:
    """Datastore `ds_id` on `lab`'s volume (a Lab or a Pool), whose GLUSTER_HOST is `hosts`."""
    base = f"{Path(lab.mount_point).parent}//{ds_id}"    # oned's BASE_PATH keeps the double slash
    template = {"GLUSTER_HOST": hosts, "GLUSTER_VOLUME": lab.volume,
                "SAFE_DIRS": f"{sources_dir}/", "RESTRICTED_DIRS": "/"}
    return ImageDatastore(remotes, base, template, ds_id, user)


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
    gluster_host: str = LAB_HOSTS  # the datastores' GLUSTER_HOST

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


def transfer_manager(lab: labmod.Lab, remotes: Path, oned: onedsim.OnedApi, auth_file: str,
                     system_ds: int, user: Optional[int] = None, hosts: str = LAB_HOSTS) -> TransferManager:
    """The TM of `lab`'s system datastore (a Lab's or a Pool's), with its image datastore registered in
    oned's stand-in, both with GLUSTER_HOST `hosts`."""
    location = str(Path(lab.mount_point).parent) + "/"
    gluster = {"GLUSTER_HOST": hosts, "GLUSTER_VOLUME": lab.volume}
    oned.datastores[system_ds] = onedsim.datastore(system_ds, f"{location}/{system_ds}", {
        **gluster, "SHARED": "YES", "TYPE": "SYSTEM_DS"}, name="gsys", ds_type=1)
    oned.datastores[system_ds + 1] = onedsim.datastore(system_ds + 1, f"{location}/{system_ds + 1}", gluster)
    return TransferManager(remotes, oned, location, auth_file, volume=lab.volume, system_ds=system_ds, user=user,
                           gluster_host=hosts)


@dataclass
class Home:
    """What the drivers' user needs beside the owned volume, in directories it can reach."""
    remotes: Path          # the drivers, installed by install.sh
    sources: Path          # where images come from (SAFE_DIRS)
    auth_file: str         # ONE_AUTH, oneadmin's own


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


def gluster_disk(disk_id: int, source: str, fmt: str, size_mb: int = 32, volume: str = VOLUME,
                 hosts: str = LAB_HOSTS, **kw) -> dict:
    return onedsim.image_disk(disk_id, image_id=disk_id, source=source, fmt=fmt, size_mb=size_mb, volume=volume,
                              hosts=hosts, **kw)

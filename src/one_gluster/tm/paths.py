"""TM arguments as oned writes them: `host:path`, with `fe:` for the front-end and doubled slashes."""

from __future__ import annotations

import os
from typing import NamedTuple, Optional

from ..errors import RequestError


class HostPath(NamedTuple):
    """`host:path` split as OpenNebula's arg_host/arg_path do; repeated slashes collapsed."""

    host: str
    path: str

    @classmethod
    def parse(cls, text: str) -> "HostPath":
        host, sep, path = text.partition(":")
        if not sep:
            host, path = "", text
        if not path.startswith("/"):
            raise RequestError(f"Expected an absolute path in {text!r}")
        return cls(host, os.path.normpath("/" + path.lstrip("/")))   # normpath alone keeps a leading //

    @property
    def disk_id(self) -> Optional[int]:
        """N for a path ending in `disk.N`, else None (a VM directory, a kernel...)."""
        name, _, number = os.path.basename(self.path).partition(".")
        return int(number) if name == "disk" and number.isascii() and number.isdigit() else None

    def require_disk_id(self) -> int:
        disk_id = self.disk_id
        if disk_id is None:
            raise RequestError(f"{self.path} is not a VM disk path (.../<vmid>/disk.<id>)")
        return disk_id

    @property
    def vm_dir(self) -> str:
        """The VM directory: the path itself, or the directory that holds the disk."""
        return os.path.dirname(self.path) if self.disk_id is not None else self.path

    def require_in_vm(self, vmid: int) -> "HostPath":
        """This path, refused unless it names a file in VM `vmid`'s directory, as oned names every disk."""
        if os.path.basename(os.path.dirname(self.path)) != str(vmid):
            raise RequestError(f"Refusing {self.path}: it is not a file of VM {vmid} (.../{vmid}/disk.<id>)")
        return self

    def require_vm_dir(self, vmid: int) -> "HostPath":
        """This path, refused unless it names VM `vmid`'s directory in a system datastore."""
        parent, name = os.path.split(self.path)
        datastore = os.path.basename(parent)
        if name != str(vmid) or not (datastore.isascii() and datastore.isdigit()):
            raise RequestError(f"Refusing {self.path}: it is not the directory of VM {vmid} "
                               f"(.../<datastore id>/{vmid})")
        return self

    def require_vm_path(self, vmid: int) -> "HostPath":
        """A disk of VM `vmid` (`disk.<id>`) or its directory: what delete may remove."""
        return self.require_in_vm(vmid) if self.disk_id is not None else self.require_vm_dir(vmid)

    def require_in_datastore(self, dsid: int) -> "HostPath":
        """This path, refused unless it names an image in datastore `dsid`'s directory (BASE_PATH is
        always DATASTORE_LOCATION/<id>), as the SOURCE of every image does."""
        if os.path.basename(os.path.dirname(self.path)) != str(dsid):
            raise RequestError(f"Refusing {self.path}: it is not an image of datastore {dsid} (.../{dsid}/<name>)")
        return self

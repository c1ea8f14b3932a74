"""The TM request: the arguments oned gives a TM action (`host:path` with `fe:` for the front-end and
doubled slashes, ids, sizes, disk id lists) and the VM document on its stdin, parsed and checked
before an action acts on them. lxml and the VM model load only with a VM document: `mv` and
`premigrate` without one start without them."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, BinaryIO, Optional

from one_gluster.core.errors import RequestError

if TYPE_CHECKING:
    from lxml import etree

    from one_gluster.core.vm import Vm

ID_MAX = 2**31 - 1              # oned's ids are C ints, and so is an XML-RPC integer
SIZE_MAX_MB = (2**63 - 1) >> 20  # the largest disk qemu-img makes: a size in bytes that fits an int64
_NUMBER = re.compile(r"-?[0-9]{1,20}")


class TmCall:
    """The executable oned ran, the arguments it gave, and its stdin (empty for most actions). (This
    module's records are plain classes: every TM action makes them at start-up, where NamedTuples
    would cost their creation, ~0.3 ms each.)"""

    __slots__ = ("program", "args", "stdin")

    def __init__(self, program: str, args: tuple[str, ...], stdin: BinaryIO) -> None:
        self.program, self.args, self.stdin = program, args, stdin

    def expect(self, count: int, usage: str) -> None:
        if len(self.args) < count:
            raise RequestError(f"Expected the arguments {usage}, got {len(self.args)}: {' '.join(self.args)}")

    def path(self, index: int) -> HostPath:
        return HostPath.parse(self.args[index])

    def number(self, index: int, name: str, most: int = ID_MAX) -> int:
        """An id (or, with `most`, a size): decimal ASCII digits, at most `most` either way from zero."""
        text = self.args[index]
        if not _NUMBER.fullmatch(text):
            raise RequestError(f"The {name} argument is not a number: {text[:40]!r}")
        value = int(text)
        if abs(value) > most:
            raise RequestError(f"The {name} argument is out of range: {text} (at most {most})")
        return value

    def size_mb(self, index: int) -> int:
        return self.number(index, "size", SIZE_MAX_MB)

    def disk_ids(self, index: int) -> list[int]:
        """A list of disk ids separated by ':' (`0:2`)."""
        text = self.args[index]
        ids = [part for part in text.split(":") if part]
        if not ids or not all(part.isascii() and part.isdigit() for part in ids):
            raise RequestError(f"Expected disk ids separated by ':', got {text!r}")
        return [int(part) for part in ids]

    def vm_document(self, vmid: Optional[int] = None) -> Optional["VmDocument"]:
        """The VM document on stdin (plain XML or base64), None when there is none; with `vmid`, it
        must be that VM's."""
        from one_gluster.core.vm import Vm
        from one_gluster.core.xmldoc import decode_base64_xml, parse_xml

        payload = self.stdin.read().strip()
        if not payload:
            return None
        if payload.startswith(b"<"):
            vm = parse_xml(payload, "VM document")
        else:
            vm = decode_base64_xml(payload, "VM document")
        if vmid is not None and (vm.tag != "VM" or vm.findtext("ID", "").strip() != str(vmid)):
            raise RequestError(f"The document on stdin is not that of VM {vmid}")
        return VmDocument(payload, vm, Vm.from_element(vm))


class VmDocument:
    """The VM document oned writes on a TM action's stdin: as sent, its XML, and read. (A plain class:
    made at every start of a TM action, where a NamedTuple would cost its creation.)"""

    __slots__ = ("sent", "element", "vm")

    def __init__(self, sent: bytes, element: "etree._Element", vm: "Vm") -> None:
        self.sent, self.element, self.vm = sent, element, vm

    @property
    def xml(self) -> bytes:
        """The document as XML (oned may send it in base64)."""
        if self.sent.startswith(b"<"):
            return self.sent
        from lxml import etree

        return etree.tostring(self.element)


class HostPath:
    """`host:path` split as OpenNebula's arg_host/arg_path do; repeated slashes collapsed."""

    __slots__ = ("host", "path")

    def __init__(self, host: str, path: str) -> None:
        self.host, self.path = host, path

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HostPath) and (other.host, other.path) == (self.host, self.path)

    def __repr__(self) -> str:
        return f"HostPath({self.host!r}, {self.path!r})"

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

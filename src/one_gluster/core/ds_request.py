"""The request oned sends a DS action (`DS_DRIVER_ACTION_DATA`), read into small typed objects."""

from __future__ import annotations

from typing import BinaryIO, NamedTuple, Optional, Sequence

from lxml import etree

from one_gluster.core.errors import RequestError
from one_gluster.core.template import Template
from one_gluster.core.xmldoc import decode_base64_xml


def _text(node: Optional[etree._Element], name: str, default: str = "") -> str:
    if node is None:
        return default
    child = node.find(name)
    if child is None or child.text is None:
        return default
    return child.text.strip()


def _int(node: Optional[etree._Element], name: str, default: int) -> int:
    value = _text(node, name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise RequestError(f"Malformed request: {name} is not a number: {value!r}") from None


# IMAGE/TYPE codes (Image.h)
IMAGE_OS, IMAGE_CDROM, IMAGE_DATABLOCK = 0, 1, 2
# DATASTORE/TYPE codes
DS_IMAGE, DS_SYSTEM, DS_FILE = 0, 1, 2


class Image(NamedTuple):
    id: int
    type: int
    path: str
    source: str
    format: str
    fs: str
    size_mb: Optional[int]
    target_snapshot: int
    snapshot_ids: tuple[int, ...]
    template: Template

    @classmethod
    def from_element(cls, node: etree._Element) -> "Image":
        size = _text(node, "SIZE")
        snaps = node.find("SNAPSHOTS")
        ids = tuple(
            int(s.findtext("ID")) for s in (snaps.findall("SNAPSHOT") if snaps is not None else [])
            if (s.findtext("ID") or "").strip().isdigit()
        )
        return cls(
            id=_int(node, "ID", -1),
            type=_int(node, "TYPE", IMAGE_OS),
            path=_text(node, "PATH"),
            source=_text(node, "SOURCE"),
            format=_text(node, "FORMAT"),
            fs=_text(node, "FS"),
            size_mb=_int(node, "SIZE", 0) if size else None,
            target_snapshot=_int(node, "TARGET_SNAPSHOT", -1),
            snapshot_ids=ids,
            template=Template.from_element(node.find("TEMPLATE")),
        )


class Datastore(NamedTuple):
    id: int
    name: str
    base_path: str
    type: int
    ds_mad: str
    tm_mad: str
    template: Template

    @classmethod
    def from_element(cls, node: etree._Element) -> "Datastore":
        return cls(
            id=_int(node, "ID", -1),
            name=_text(node, "NAME"),
            base_path=_text(node, "BASE_PATH"),
            type=_int(node, "TYPE", DS_IMAGE),
            ds_mad=_text(node, "DS_MAD"),
            tm_mad=_text(node, "TM_MAD"),
            template=Template.from_element(node.find("TEMPLATE")),
        )

    def require_base_path(self) -> str:
        if not self.base_path:
            raise RequestError("The datastore has no BASE_PATH in the request")
        return self.base_path


class DsRequest(NamedTuple):
    """A `DS_DRIVER_ACTION_DATA` document."""

    datastore: Datastore
    image: Optional[Image]
    datastore_location: str = ""
    monitor_vm_disks: bool = False

    @classmethod
    def from_element(cls, root: etree._Element) -> DsRequest:
        if root.tag != "DS_DRIVER_ACTION_DATA":
            raise RequestError(f"Unexpected request document <{root.tag}>, expected <DS_DRIVER_ACTION_DATA>")
        ds = root.find("DATASTORE")
        if ds is None:
            raise RequestError("The request has no DATASTORE element")
        img = root.find("IMAGE")
        return cls(
            datastore=Datastore.from_element(ds),
            image=Image.from_element(img) if img is not None else None,
            datastore_location=_text(root, "DATASTORE_LOCATION"),
            monitor_vm_disks=_text(root, "MONITOR_VM_DISKS") == "1",
        )

    def require_image(self) -> Image:
        if self.image is None:
            raise RequestError("The request has no IMAGE element")
        return self.image


def read_ds_request(args: Sequence[str], stdin: BinaryIO) -> DsRequest:
    """The request of a DS action, in each form oned has used.

    6.8 and later: `<action> <id>` with the base64 request on stdin; 6.4.4-6.6 with -i:
    `<action> - <id>` and stdin; older: `<action> <base64> <id>`.
    """
    if len(args) == 1 or (len(args) >= 2 and args[0] == "-"):
        payload = stdin.read()
    elif len(args) >= 2:
        payload = args[0].encode("ascii", "replace")
    else:
        raise RequestError("Missing arguments: expected the object id, with the base64 request on stdin")
    return DsRequest.from_element(decode_base64_xml(payload))

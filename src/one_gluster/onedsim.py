"""What oned sends to a datastore driver, built field for field (OpenNebula 7.x), and the call itself.

oned is the one component no registry ships, so the demo and the tests drive the drivers with
these documents: the same elements in the same order as `Image::to_xml` / `Datastore::to_xml`
(see shared/fixtures/opennebula-7.5), base64 on stdin, the object id as the only argument.
"""

from __future__ import annotations

import base64
import os
import subprocess
from typing import Mapping, Optional, Sequence

from lxml import etree

_PERMS = ("OWNER_U", "OWNER_M", "OWNER_A", "GROUP_U", "GROUP_M", "GROUP_A", "OTHER_U", "OTHER_M", "OTHER_A")


def _add(parent: etree._Element, tag: str, text: object = None) -> etree._Element:
    node = etree.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


def _common(node: etree._Element, oid: int, name: str, perms: str) -> None:
    for tag, text in (("ID", oid), ("UID", 0), ("GID", 0), ("UNAME", "oneadmin"), ("GNAME", "oneadmin"),
                      ("NAME", name)):
        _add(node, tag, text)
    permissions = _add(node, "PERMISSIONS")
    for tag, bit in zip(_PERMS, perms):
        _add(permissions, tag, bit)


def _template(parent: etree._Element, values: Mapping[str, str]) -> None:
    template = _add(parent, "TEMPLATE")
    for key in sorted(values):
        _add(template, key, values[key])


def image(oid: int, *, name: str = "image", path: str = "", source: str = "", fmt: str = "", fs: str = "",
          size_mb: Optional[int] = None, image_type: int = 0, persistent: int = 0, state: int = 4,
          target_snapshot: int = -1, snapshot_ids: Sequence[int] = (), datastore_id: int = 101,
          datastore: str = "gimg", template: Optional[Mapping[str, str]] = None) -> etree._Element:
    """An <IMAGE> as Image::to_xml writes it."""
    node = etree.Element("IMAGE")
    _common(node, oid, name, "110000000")
    for tag, text in (("TYPE", image_type), ("DISK_TYPE", 5), ("PERSISTENT", persistent),
                      ("REGTIME", 1795266083), ("MODTIME", 1795266083), ("SOURCE", source), ("PATH", path),
                      ("FORMAT", fmt), ("FS", fs), ("SIZE", size_mb if size_mb is not None else ""),
                      ("STATE", state), ("PREV_STATE", 0), ("RUNNING_VMS", 0), ("CLONING_OPS", 0),
                      ("CLONING_ID", -1), ("TARGET_SNAPSHOT", target_snapshot), ("DATASTORE_ID", datastore_id),
                      ("DATASTORE", datastore)):
        _add(node, tag, text)
    for tag in ("VMS", "CLONES", "APP_CLONES"):
        _add(node, tag)
    _template(node, {"DEV_PREFIX": "sd", **(template or {})})
    snapshots = _add(node, "SNAPSHOTS")
    _add(snapshots, "ALLOW_ORPHANS", "YES")
    _add(snapshots, "CURRENT_BASE", -1)
    _add(snapshots, "NEXT_SNAPSHOT", max(snapshot_ids, default=-1) + 1)
    for sid in snapshot_ids:
        snap = _add(snapshots, "SNAPSHOT")
        for tag, text in (("ACTIVE", "NO"), ("DATE", 1795266083), ("ID", sid), ("NAME", f"snap{sid}"),
                          ("PARENT", -1), ("SIZE", 0)):
            _add(snap, tag, text)
    _add(node, "BACKUP_INCREMENTS")
    _add(node, "BACKUP_DISK_IDS")
    return node


def stat_image(path: str, size_mb: Optional[int] = None) -> etree._Element:
    """The minimal <IMAGE> oned sends to `stat` (ImageManager::stat_image)."""
    node = etree.Element("IMAGE")
    _add(node, "PATH", path)
    _add(node, "SIZE", size_mb)
    return node


def datastore(oid: int, base_path: str, template: Mapping[str, str], *, name: str = "gimg",
              ds_type: int = 0, images: Sequence[int] = ()) -> etree._Element:
    """A <DATASTORE> as Datastore::to_xml writes it for a gluster image datastore."""
    node = etree.Element("DATASTORE")
    _common(node, oid, name, "110100000")
    for tag, text in (("DS_MAD", "gluster"), ("TM_MAD", "gluster"), ("BASE_PATH", base_path),
                      ("TYPE", ds_type), ("DISK_TYPE", 5), ("STATE", 0)):
        _add(node, tag, text)
    _add(_add(node, "CLUSTERS"), "ID", 0)
    for tag in ("TOTAL_MB", "FREE_MB", "USED_MB"):
        _add(node, tag, 0)
    image_ids = _add(node, "IMAGES")
    for iid in images:
        _add(image_ids, "ID", iid)
    defaults = {"ALLOW_ORPHANS": "YES", "CLONE_TARGET": "SYSTEM", "DISK_TYPE": "GLUSTER", "DS_MAD": "gluster",
                "LN_TARGET": "NONE", "TM_MAD": "gluster", "TYPE": "IMAGE_DS"}
    _template(node, {**defaults, **template})
    return node


def request(datastore_node: etree._Element, image_node: Optional[etree._Element] = None,
            extra: Optional[Mapping[str, str]] = None) -> bytes:
    """The base64 DS_DRIVER_ACTION_DATA, on one line with no trailing newline, as oned writes it."""
    root = etree.Element("DS_DRIVER_ACTION_DATA")
    if image_node is not None:
        root.append(image_node)
    root.append(datastore_node)
    for tag, text in (extra or {}).items():
        _add(root, tag, text)
    return base64.b64encode(etree.tostring(root))


def call(executable: str, object_id: int, payload: bytes,
         env: Optional[Mapping[str, str]] = None) -> subprocess.CompletedProcess:
    """Run a DS action as oned 6.8+ does: `<action> <id>`, the base64 request on stdin."""
    return subprocess.run([executable, str(object_id)], input=payload, capture_output=True,
                          env={**os.environ, **(env or {})}, check=False)

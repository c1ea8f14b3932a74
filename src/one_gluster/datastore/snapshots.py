"""DS `snap_delete`, `snap_revert`, `snap_flatten`: image snapshots, kept as the TM keeps disk ones.

The active image never moves away from SOURCE (OpenNebula core opens `GLUSTER_VOLUME/<basename
of SOURCE>` for persistent disks): qcow2 images hold their snapshots inside the file as internal
snapshots named by `qemu.snapshot_tag`; raw images keep full copies in `SOURCE.snap/<id>`.
"""

from __future__ import annotations

import os
from typing import Optional

from .. import files, log, qemu
from ..errors import DriverError, RequestError
from ..request import DsRequest, Image
from .layout import image_file


def _target(req: DsRequest) -> tuple[Image, str, int, bool]:
    """The image, its real path, the snapshot id asked for, and whether it is qcow2."""
    image = req.require_image()
    if image.target_snapshot < 0:
        raise RequestError("The request names no TARGET_SNAPSHOT")
    path = image_file(image, req.datastore)
    fmt = image.format.lower() or qemu.info(path)["format"]
    return image, path, image.target_snapshot, fmt == "qcow2"


def _find(path: str, snap: int, qcow2: bool) -> Optional[str]:
    """The qcow2 tag or the raw snapshot file of snapshot `snap`, or None if there is none."""
    if qcow2:
        tag = qemu.snapshot_tag(snap)
        return tag if tag in qemu.snapshot_names(path) else None
    snap_file = files.snapshot_copy(path, snap)
    return snap_file if os.path.isfile(snap_file) else None


def _require(image: Image, path: str, snap: int, qcow2: bool) -> str:
    found = _find(path, snap, qcow2)
    if found is None:
        raise DriverError(f"Image {image.source} has no snapshot {snap}")
    return found


def snap_delete(req: DsRequest) -> None:
    """Delete snapshot TARGET_SNAPSHOT; one already gone is fine."""
    image, path, snap, qcow2 = _target(req)
    found = _find(path, snap, qcow2)
    if found is None:
        log.info(f"Snapshot {snap} of {image.source} was already gone")
        return None
    if qcow2:
        qemu.snapshot(path, "-d", found)
    else:
        os.unlink(found)
    log.info(f"Deleted snapshot {snap} of {image.source}")
    return None


def snap_revert(req: DsRequest) -> None:
    """Make the image's content that of snapshot TARGET_SNAPSHOT, at SOURCE."""
    image, path, snap, qcow2 = _target(req)
    found = _require(image, path, snap, qcow2)
    if qcow2:
        qemu.snapshot(path, "-a", found)
    else:
        files.copy_staged(found, path)
    log.info(f"Reverted {image.source} to snapshot {snap}")
    return None


def snap_flatten(req: DsRequest) -> None:
    """Make snapshot TARGET_SNAPSHOT the image's content and drop every snapshot."""
    image, path, snap, qcow2 = _target(req)
    found = _require(image, path, snap, qcow2)
    if qcow2:
        with files.Staging(path) as staging:
            temp = staging.temp()
            qemu.convert(path, temp, "qcow2", src_fmt="qcow2", snapshot=found)
            staging.commit(temp)
    else:
        os.replace(found, path)
        files.remove_tree(f"{path}.snap")
    log.info(f"Flattened {image.source} on snapshot {snap}")
    return None

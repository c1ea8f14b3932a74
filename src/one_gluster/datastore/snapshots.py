"""DS `snap_delete`, `snap_revert`, `snap_flatten`: image snapshots, in the snapshot store the TM keeps
disk snapshots in (`core.snapshot_store`), at SOURCE: OpenNebula core opens `GLUSTER_VOLUME/<basename
of SOURCE>` for persistent disks."""

from __future__ import annotations

from one_gluster.core import log, qemu
from one_gluster.core.ds_request import DsRequest, Image
from one_gluster.core.errors import RequestError
from one_gluster.core.snapshot_store import Snapshots
from one_gluster.datastore.image_paths import image_file


def _target(req: DsRequest) -> tuple[Image, Snapshots, int]:
    """The image, its snapshots, and the snapshot id asked for."""
    image = req.require_image()
    if image.target_snapshot < 0:
        raise RequestError("The request names no TARGET_SNAPSHOT")
    path = image_file(image, req.datastore)
    fmt = image.format.lower() or qemu.info(path)["format"]
    return image, Snapshots(path, fmt == "qcow2"), image.target_snapshot


def snap_delete(req: DsRequest) -> None:
    """Delete snapshot TARGET_SNAPSHOT; one already gone is fine."""
    image, snapshots, snap = _target(req)
    if not snapshots.delete(snap):
        log.info(f"Snapshot {snap} of {image.source} was already gone")
        return None
    log.info(f"Deleted snapshot {snap} of {image.source}")
    return None


def snap_revert(req: DsRequest) -> None:
    """Make the image's content that of snapshot TARGET_SNAPSHOT, at SOURCE."""
    image, snapshots, snap = _target(req)
    snapshots.revert(snap, f"Image {image.source}")
    log.info(f"Reverted {image.source} to snapshot {snap}")
    return None


def snap_flatten(req: DsRequest) -> None:
    """Make snapshot TARGET_SNAPSHOT the image's content and drop every snapshot."""
    image, snapshots, snap = _target(req)
    snapshots.flatten(snap, f"Image {image.source}")
    log.info(f"Flattened {image.source} on snapshot {snap}")
    return None

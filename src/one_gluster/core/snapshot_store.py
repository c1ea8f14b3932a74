"""The snapshots of an image or a VM disk, kept as both drivers keep them.

The active layer never moves away from the name OpenNebula core opens (SOURCE, `<vmid>/disk.<i>`):
a qcow2 file holds its snapshots inside as internal snapshots `one-snap-<id>`; a raw file keeps full
copies in `<file>.snap/<id>`. The DS driver (image snapshots) and the TM driver (disk snapshots)
both keep them here, so that a persistent disk's snapshots become its image's. Where they are is
cheap to ask (`folder`, for the actions that remove a disk); qemu-img and the copies load with the
operations that need them.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Optional

from one_gluster.core.errors import DriverError


def tag(snap_id: int) -> str:
    """The internal qcow2 snapshot that holds OpenNebula snapshot `snap_id`."""
    return f"one-snap-{snap_id}"


def folder(path: str) -> str:
    """Where the raw file `path` keeps its snapshot copies (removed with the file)."""
    return f"{path}.snap"


def copy_path(path: str, snap_id: int) -> str:
    """The full copy of the raw file `path` that is its snapshot `snap_id`."""
    return os.path.join(folder(path), str(snap_id))


class Snapshots(NamedTuple):
    """The snapshots of the file `path` (qcow2 inside it, raw beside it)."""

    path: str
    qcow2: bool

    def find(self, snap_id: int, tags: Optional[list[str]] = None) -> Optional[str]:
        """The qcow2 tag or the raw copy of snapshot `snap_id`, or None if there is none. `tags`: the
        file's internal snapshots as its running QEMU sees them, where one has it open."""
        if self.qcow2:
            from one_gluster.core import qemu

            name = tag(snap_id)
            return name if name in (qemu.snapshot_names(self.path) if tags is None else tags) else None
        copy = copy_path(self.path, snap_id)
        return copy if os.path.isfile(copy) else None

    def require(self, snap_id: int, owner: str) -> str:
        """As `find`; no such snapshot is an error that names `owner`."""
        found = self.find(snap_id)
        if found is None:
            raise DriverError(f"{owner} has no snapshot {snap_id}")
        return found

    def new_copy(self, snap_id: int) -> str:
        """Where a raw snapshot copy is to be written (its folder made)."""
        os.makedirs(folder(self.path), exist_ok=True)
        return copy_path(self.path, snap_id)

    def create(self, snap_id: int) -> None:
        """Snapshot `snap_id` of a file nothing has open: an internal snapshot, or a staged full copy."""
        from one_gluster.core import qemu, sparse_copy

        if self.qcow2:
            qemu.snapshot(self.path, "-c", tag(snap_id))
        else:
            sparse_copy.copy_staged(self.path, self.new_copy(snap_id))

    def delete(self, snap_id: int) -> bool:
        """Remove snapshot `snap_id`; False when it was already gone."""
        from one_gluster.core import qemu, staging

        if not self.qcow2:
            return staging.remove_tree(copy_path(self.path, snap_id))
        found = self.find(snap_id)
        if found is not None:
            qemu.snapshot(self.path, "-d", found)
        return found is not None

    def revert(self, snap_id: int, owner: str) -> None:
        """Make the file's content that of snapshot `snap_id`, in place."""
        from one_gluster.core import qemu, sparse_copy

        found = self.require(snap_id, owner)
        if self.qcow2:
            qemu.snapshot(self.path, "-a", found)
        else:
            sparse_copy.copy_staged(found, self.path)

    def flatten(self, snap_id: int, owner: str) -> None:
        """Make snapshot `snap_id` the file's content and drop every snapshot."""
        from one_gluster.core import qemu, staging

        found = self.require(snap_id, owner)
        if self.qcow2:
            with staging.Staging(self.path) as stage:
                temp = stage.temp()
                qemu.convert(self.path, temp, "qcow2", src_fmt="qcow2", snapshot=found)
                stage.commit(temp)
        else:
            os.replace(found, self.path)
            staging.remove_tree(folder(self.path))

"""DS `monitor`: the capacity of the volume that holds the datastore."""

from __future__ import annotations

from one_gluster.core.ds_request import DsRequest
from one_gluster.core.volume import Volume, require_mount


def monitor(req: DsRequest) -> str:
    """USED_MB, FREE_MB and TOTAL_MB: one statvfs, however many images."""
    ds = req.datastore
    return require_mount(ds.require_base_path(), Volume.from_template(ds.template)).usage()

"""DS `monitor`: the capacity of the volume that holds the datastore."""

from __future__ import annotations

import os

from ..request import DsRequest
from ..volume import Volume, require_mount

MiB = 1 << 20


def monitor(req: DsRequest) -> str:
    """USED_MB, FREE_MB and TOTAL_MB as `df -B1M` gives them: one statvfs, however many images."""
    mounted = require_mount(req.datastore.require_base_path(), Volume.from_template(req.datastore.template))
    st = os.statvfs(mounted.mount.mount_point)
    # files.ceil_mb's rounding, inline: importing `files` (secrets, shutil) would slow every monitor call.
    mb = lambda blocks: -(-blocks * st.f_frsize // MiB)
    return f"USED_MB={mb(st.f_blocks - st.f_bfree)}\nFREE_MB={mb(st.f_bavail)}\nTOTAL_MB={mb(st.f_blocks)}"

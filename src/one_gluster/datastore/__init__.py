"""The datastore (DS_MAD) actions: each takes the parsed request and returns the line for stdout.

Images live at `BASE_PATH/<32 hex digits>` on the FUSE mount. Each action lives in the module
named for what it handles, imported only when that action runs: `monitor` is called every few
minutes and must not pay for the modules that importing images needs.
"""

from __future__ import annotations

import importlib
from typing import Callable, Optional

from one_gluster.core.ds_request import DsRequest
from one_gluster.core.errors import DriverError

Action = Callable[[DsRequest], Optional[str]]

MODULES = {
    "cp": "images", "stat": "images", "mkfs": "images", "clone": "images", "rm": "images",
    "monitor": "monitor",
    "snap_delete": "snapshots", "snap_revert": "snapshots", "snap_flatten": "snapshots",
    "export": "export",
}


def action(name: str) -> Action:
    if name not in MODULES:
        raise DriverError(f"Unknown datastore action {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{MODULES[name]}"), name)

"""The transfer-manager (TM_MAD) actions: each takes oned's arguments and does its work on the FUSE mount.

oned passes TM actions positional arguments only (`host:path`, ids, sizes), and stdin only to the
migrate, backup and monitor actions. Each action lives in the module named for what it handles, imported
only when it runs, so that cheap actions (mv, premigrate) do not pay for pyone, lxml or `sh`.
`<action>.ssh` names are the mixed mode with an ssh system datastore.
"""

from __future__ import annotations

import importlib
from typing import Callable, Optional

from one_gluster.core.errors import DriverError
from one_gluster.core.tm_request import TmCall

MODULES = {
    "clone": "disks", "ln": "disks", "mkimage": "disks", "mkswap": "disks", "resize": "disks", "cpds": "disks",
    "context": "context",
    "mv": "moves", "mvds": "moves", "delete": "moves",
    "premigrate": "migrate", "postmigrate": "migrate", "failmigrate": "migrate",
    "snap_create": "snapshots", "snap_create_live": "snapshots", "snap_delete": "snapshots",
    "snap_revert": "snapshots",
    "monitor": "monitor",
    "prebackup": "backup", "prebackup_live": "backup", "postbackup": "backup", "postbackup_live": "backup",
    "clone.ssh": "ssh_mode", "ln.ssh": "ssh_mode", "mvds.ssh": "ssh_mode", "cpds.ssh": "ssh_mode",
    "delete.ssh": "ssh_mode", "resize.ssh": "ssh_mode",
}
Action = Callable[[TmCall], Optional[str]]


def action(name: str) -> Action:
    if name not in MODULES:
        raise DriverError(f"Unknown transfer manager action {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{MODULES[name]}"), name.replace(".", "_"))

"""The transfer-manager (TM_MAD) actions: each takes oned's arguments and does its work on the FUSE mount.

oned passes TM actions positional arguments only (`host:path`, ids, sizes), and stdin only to the
migrate, backup and monitor actions. Each action lives in the module named for what it handles, imported
only when it runs, so that cheap actions (mv, premigrate) do not pay for pyone, lxml or `sh`.
`<action>.ssh` names are the mixed mode with an ssh system datastore.
"""

from __future__ import annotations

import importlib
import re
from typing import BinaryIO, Callable, NamedTuple, Optional

from ..errors import DriverError, RequestError
from .paths import HostPath

MODULES = {
    "clone": "disks", "ln": "disks", "mkimage": "disks", "mkswap": "disks", "resize": "disks", "cpds": "disks",
    "context": "context",
    "mv": "moves", "mvds": "moves", "delete": "moves",
    "premigrate": "migrate", "postmigrate": "migrate", "failmigrate": "migrate",
    "snap_create": "snapshots", "snap_create_live": "snapshots", "snap_delete": "snapshots",
    "snap_revert": "snapshots",
    "monitor": "monitor",
    "prebackup": "backup", "prebackup_live": "backup", "postbackup": "backup", "postbackup_live": "backup",
    "clone.ssh": "mixed", "ln.ssh": "mixed", "mvds.ssh": "mixed", "cpds.ssh": "mixed", "delete.ssh": "mixed",
    "resize.ssh": "mixed",
}
ID_MAX = 2**31 - 1              # oned's ids are C ints, and so is an XML-RPC integer
SIZE_MAX_MB = (2**63 - 1) >> 20  # the largest disk qemu-img makes: a size in bytes that fits an int64
_NUMBER = re.compile(r"-?[0-9]{1,20}")


class TmCall(NamedTuple):
    """The executable oned ran, the arguments it gave, and its stdin (empty for most actions)."""

    program: str
    args: tuple[str, ...]
    stdin: BinaryIO

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


Action = Callable[[TmCall], Optional[str]]


def action(name: str) -> Action:
    if name not in MODULES:
        raise DriverError(f"Unknown transfer manager action {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{MODULES[name]}"), name.replace(".", "_"))

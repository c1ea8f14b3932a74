"""What each VM directory of a system datastore held when the TM monitor last listed it, kept between
runs on the machine that monitors (oneadmin's cache directory), so that a directory nothing changed in
costs no listing: through FUSE a listing is three round trips to the bricks, a disk's stat one.

A directory's entry is trusted while the directory's inode, mtime and ctime (read from the listing of
the datastore, which carries them) are those it was listed with: creating, removing or renaming a
disk changes its mtime. A directory changed within the last RACY seconds is not kept, so that a
second change within one tick of the clock cannot hide behind the first. A change made from another
machine is seen once the kernel's attribute cache of the directory expires (1 s): at the latest by the
next run. The cache is only a shortcut: unreadable, unwritable or of another datastore, it is ignored
and the monitor lists every directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from typing import Optional

Key = tuple[int, int, int]          # the VM directory's (inode, mtime_ns, ctime_ns)
Names = dict[str, Optional[str]]    # its disk entries: name -> link target (None: a file or folder)

RACY = 2.0
VERSION = 1


def cache_path(ds_id: int) -> str:
    """Where the listings of system datastore `ds_id` are kept ($XDG_CACHE_HOME or ~/.cache)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "one-gluster", f"monitor-{ds_id}.json")


def key_of(stat: os.stat_result) -> Key:
    return (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns)


class VmListings:
    """The listings of one run: those kept from the last run, and those this run keeps for the next."""

    def __init__(self, path: str, base: str) -> None:
        self._path, self._base = path, base
        self._started = time.time()
        self._kept = self._load()
        self._keep: dict[str, list] = {}

    def _load(self) -> dict[str, list]:
        try:
            with open(self._path, encoding="utf-8") as f:
                data = json.load(f)
            if data.get("version") == VERSION and data.get("base") == self._base:
                return dict(data["vms"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return {}

    def get(self, vm: str, key: Key) -> Optional[Names]:
        """The names VM directory `vm` held, when it is unchanged since they were listed."""
        kept = self._kept.get(vm)
        if not (isinstance(kept, list) and len(kept) == 2 and kept[0] == list(key) and isinstance(kept[1], dict)
                and all(target is None or isinstance(target, str) for target in kept[1].values())):
            return None
        self._keep[vm] = kept
        return kept[1]

    def put(self, vm: str, key: Key, names: Names) -> None:
        """Keep what a listing of `vm` found, unless the directory changed too recently to trust its key."""
        if max(key[1:]) < (self._started - RACY) * 1e9:
            self._keep[vm] = [list(key), names]

    def save(self) -> None:
        """Replace the kept listings with this run's (a temporary file renamed into place); failing
        that, leave them: the next run lists again."""
        directory = os.path.dirname(self._path)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=directory, prefix=".monitor-")
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"version": VERSION, "base": self._base, "vms": self._keep}, f, separators=(",", ":"))
            os.replace(temporary, self._path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)

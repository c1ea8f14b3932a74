"""Staged writes: every file the drivers make appears at its final name only complete, by an atomic
rename of a fsync'ed temporary file beside it; what is not committed is removed, and temporaries left
behind by a failed volume are swept once stale."""

from __future__ import annotations

import os
import re
import threading
import time

from one_gluster.core import log
from one_gluster.core.errors import DriverError

_STAGED = re.compile(r"\..+\.[0-9a-f]{8}\.[a-z0-9]+")     # the names Staging.temp gives
STALE_AFTER = 24 * 3600  # seconds a staging file goes unwritten before it counts as left behind
_committed = False       # has this process renamed a result into place?
_live: set[str] = set()  # the staging files of this process not yet renamed or removed


def committed() -> bool:
    """Whether this process has renamed a result into place: from then on the driver answers oned
    rather than stop at TERM, which would leave a whole image that oned never learns of."""
    return _committed


def abandon() -> None:
    """Remove every staging file of this process at once: the driver is being stopped (TERM), and the
    unwinding it starts may be cut short."""
    for path in list(_live):
        _live.discard(path)
        try:
            os.unlink(path)
        except OSError:
            pass


def fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Staging:
    """Temporary files beside a final path; whatever is not committed is removed on exit.

    Every write of the drivers goes through here: the final name appears only by an atomic rename
    of a complete, fsync'ed file, so a failure or a kill never leaves a partial image at SOURCE.
    """

    def __init__(self, final: str) -> None:
        self.final = final
        self._dir, self._base = os.path.split(final)
        self._temps: list[str] = []
        self._flushes: list[tuple[threading.Thread, list[OSError]]] = []

    def temp(self, tag: str = "part") -> str:
        """A new temporary name in the final file's directory (same filesystem, so rename is atomic)."""
        path = os.path.join(self._dir, f".{self._base}.{token(4)}.{tag}")
        self._temps.append(path)
        _live.add(path)
        return path

    def flush_ahead(self, temp: str) -> None:
        """Start the fsync of `temp` in a thread, while the action does other work: the bricks write its
        data to disk meanwhile (the fsync waits, releasing the GIL). `commit` waits for it."""
        failed: list[OSError] = []

        def flush() -> None:
            try:
                fsync_path(temp)
            except OSError as exc:
                failed.append(exc)

        thread = threading.Thread(target=flush, daemon=True)
        thread.start()
        self._flushes.append((thread, failed))

    def _join_flushes(self) -> None:
        for thread, failed in self._flushes:
            thread.join()
            if failed:
                raise failed[0]
        self._flushes.clear()

    def commit(self, temp: str) -> None:
        """fsync `temp` (again, after a flush ahead: little is left by then) and rename it over the
        final name."""
        global _committed
        self._join_flushes()
        fsync_path(temp)
        _committed = True            # before the rename: a TERM handled right after it must see it
        os.replace(temp, self.final)
        self._temps.remove(temp)
        _live.discard(temp)

    def __enter__(self) -> "Staging":
        # said here, with whose the directory is: the tools that write the files say only "Permission denied"
        if os.path.isdir(self._dir) and not os.access(self._dir, os.W_OK | os.X_OK):
            raise DriverError(f"Permission denied: {self._dir} ({ownership(self._dir)}): the volume's files "
                              "must belong to oneadmin; `one-gluster prepare` sets its storage.owner-uid/gid "
                              "to oneadmin's ids")
        return self

    def __exit__(self, *exc: object) -> None:
        for thread, _ in self._flushes:   # an action that failed: its flushes end before their files go
            thread.join()
        for path in self._temps:
            _live.discard(path)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as error:      # the volume failed (quorum lost): the action's own error stands
                log.error(f"Could not remove the staging file {path} ({error.strerror}): "
                          "remove it once the volume answers again")


def ownership(path: str) -> str:
    """This process's ids against the owner and mode of `path` and of its directory: what a permission
    error needs said (reading a file depends on the file, making or removing one on its directory)."""
    facts = [f"the driver runs as uid {os.geteuid()} gid {os.getegid()}"]
    for target in (path, os.path.dirname(path.rstrip("/")) or "/"):
        try:
            st = os.stat(target)
        except OSError:
            continue
        facts.append(f"{target} belongs to uid {st.st_uid} gid {st.st_gid}, mode {st.st_mode & 0o7777:04o}")
    return "; ".join(facts)


def remove_stale_staging(directory: str) -> list[str]:
    """Remove the staging files in `directory` that nothing has written for STALE_AFTER, and return
    their paths: those of actions that failed with their volume and could not remove them (an action
    at work keeps writing its files: even a download capped at 1 KB/s writes a chunk every ~17 min)."""
    removed, now = [], time.time()
    with os.scandir(directory) as entries:
        for entry in entries:
            if not _STAGED.fullmatch(entry.name):
                continue
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER:
                    os.unlink(entry.path)
                    removed.append(entry.path)
            except FileNotFoundError:     # removed meanwhile, by its action or another sweep
                pass
    return removed


def remove_tree(path: str) -> bool:
    """Remove a file or a directory tree; return whether anything was there."""
    if os.path.isdir(path) and not os.path.islink(path):
        import shutil  # not at start-up: it pulls in the compression modules

        shutil.rmtree(path)
        return True
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def token(nbytes: int) -> str:
    """`nbytes` random bytes in hex, as secrets.token_hex makes them (without its start-up cost)."""
    return os.urandom(nbytes).hex()


def unique_name(directory: str, token_bytes: int = 16) -> str:
    """A fresh name in `directory` that exists nowhere else on the volume (32 hex digits)."""
    while True:
        name = token(token_bytes)
        if not os.path.lexists(os.path.join(directory, name)):
            return name


def open_new(path: str, mode: int = 0o644) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)

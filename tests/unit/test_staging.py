"""Staged writes (`core.staging`), on a local filesystem: what is not committed goes, the flush ahead,
a volume that cannot remove, and the sweep of day-old staging files."""

from __future__ import annotations

import errno
import os
import time

import pytest

from one_gluster.core.staging import STALE_AFTER, Staging, remove_stale_staging


def test_staging_removes_uncommitted(tmp_path):
    final = tmp_path / "image"
    with pytest.raises(RuntimeError):
        with Staging(str(final)) as staging:
            temp = staging.temp()
            open(temp, "wb").write(b"half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with Staging(str(final)) as staging:
        temp = staging.temp()
        open(temp, "wb").write(b"whole")
        staging.temp("scratch")
        staging.commit(temp)
    assert [p.name for p in tmp_path.iterdir()] == ["image"] and final.read_bytes() == b"whole"


def test_staging_flush_ahead_is_waited_for_and_its_failure_stops_the_commit(tmp_path, monkeypatch):
    final = tmp_path / "image"
    with Staging(str(final)) as staging:
        temp = staging.temp()
        open(temp, "wb").write(b"whole")
        staging.flush_ahead(temp)
        staging.commit(temp)
    assert final.read_bytes() == b"whole"

    real_fsync, calls = os.fsync, []

    def failing(fd):                   # the flush ahead fails (the volume's disk), slowly; a later fsync would not
        calls.append(fd)
        if len(calls) > 1:
            return real_fsync(fd)
        time.sleep(0.2)
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with pytest.raises(OSError, match="Input/output error"):
        with Staging(str(tmp_path / "other")) as staging:
            temp = staging.temp()
            open(temp, "wb").write(b"lost")
            monkeypatch.setattr(os, "fsync", failing)
            staging.flush_ahead(temp)
            staging.commit(temp)       # raises the flush's failure: the file is not renamed into place
    assert len(calls) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["image"]


def test_staging_that_cannot_remove_keeps_the_error_and_says_what_is_left(tmp_path, monkeypatch, capsys):
    def unreachable(path):
        raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN), path)

    with pytest.raises(RuntimeError, match="write failed"):
        with Staging(str(tmp_path / "image")) as staging:
            temp = staging.temp()
            open(temp, "wb").write(b"half")
            monkeypatch.setattr(os, "unlink", unreachable)      # the volume has lost its quorum
            raise RuntimeError("write failed")
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and err.count("\n") == 1
    assert f"Could not remove the staging file {temp} (Transport endpoint is not connected)" in err


def test_remove_stale_staging_takes_only_old_staging_files(tmp_path):
    image = "0123456789abcdef0123456789abcdef"
    with Staging(str(tmp_path / image)) as staging:
        staged = [staging.temp(tag) for tag in ("part", "qcow2", "xml", "link")]   # every tag the actions use
    others = [image, ".direct-io.0a1b2c3d", f".{image}.md5sum", ".shard"]
    paths = [*staged, *(str(tmp_path / name) for name in others)]
    for path in paths:
        open(path, "wb").close()
    young = staged.pop()                               # written a minute ago: an action at work
    for path in paths:
        if path != young:
            os.utime(path, (time.time() - STALE_AFTER - 60,) * 2)
    assert sorted(remove_stale_staging(str(tmp_path))) == sorted(staged)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, os.path.basename(young)])

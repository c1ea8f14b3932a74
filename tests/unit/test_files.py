"""Sparse copies, staged writes and the 512-byte padding, on a local filesystem."""

from __future__ import annotations

import errno
import io
import os
import resource
import threading
import time

import pytest

from one_gluster import files

MiB = 1 << 20


def test_copy_stream_makes_holes_of_zero_blocks(tmp_path):
    data = bytearray(8 * MiB)
    data[100:200] = b"x" * 100
    data[5 * MiB:5 * MiB + 10] = b"y" * 10
    dst = tmp_path / "dst"
    with files.NewFile(str(dst)) as out:
        size = files.copy_stream(io.BytesIO(bytes(data)), out)
    assert size == len(data) and dst.read_bytes() == bytes(data)
    assert os.stat(dst).st_blocks * 512 <= 2 * files.BLOCK


@pytest.mark.parametrize("tail", [b"z" * 100, bytes(100), b"\0" * 99 + b"z"])
def test_write_sparse_short_tail_block(tmp_path, tail):
    data = bytearray(files.CHUNK + files.BLOCK + len(tail))
    data[files.CHUNK - 1] = 1                                   # last byte of a block
    data[files.CHUNK + files.BLOCK:] = tail
    dst = tmp_path / "dst"
    with files.NewFile(str(dst)) as out:
        assert files.copy_stream(io.BytesIO(bytes(data)), out) == len(data)
    assert dst.read_bytes() == bytes(data)


def test_copy_file_skips_holes_and_keeps_tail(tmp_path):
    src = tmp_path / "src"
    with open(src, "wb") as f:
        f.truncate(10 * MiB + 123)
        f.seek(3 * MiB)
        f.write(os.urandom(MiB + 7))
    dst = tmp_path / "dst"
    with files.NewFile(str(dst)) as out:
        assert files.copy_file(str(src), out) == 10 * MiB + 123
    assert dst.read_bytes() == src.read_bytes()
    assert os.stat(dst).st_blocks * 512 <= MiB + 2 * files.BLOCK


class _Trickle(io.RawIOBase):
    """A source that gives odd-sized reads of random data, then fails after `fail_at` bytes."""

    def __init__(self, data: bytes, fail_at: int = -1) -> None:
        self.data, self.pos, self.fail_at = data, 0, fail_at

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if 0 <= self.fail_at <= self.pos:
            raise OSError("connection reset")
        n = min(len(buf), 300_001, len(self.data) - self.pos)
        buf[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


def test_copy_stream_reads_ahead_in_order(tmp_path):
    # more chunks than the read-ahead holds, short reads, a tail shorter than a chunk
    data = os.urandom((files.READ_AHEAD * 3 + 1) * files.CHUNK + 4321)
    dst = tmp_path / "dst"
    with files.NewFile(str(dst)) as out:
        assert files.copy_stream(_Trickle(data), out) == len(data)
    assert dst.read_bytes() == data


def test_copy_stream_raises_the_source_error_and_stops_reading(tmp_path):
    data = os.urandom(20 * files.CHUNK)
    source = _Trickle(data, fail_at=9 * files.CHUNK)
    before = threading.active_count()
    with files.NewFile(str(tmp_path / "dst")) as out:
        with pytest.raises(OSError, match="connection reset"):
            files.copy_stream(source, out)
    assert threading.active_count() == before      # the reader thread is gone, not left blocked
    assert source.pos == 9 * files.CHUNK            # nothing read past the failure


def test_copy_stream_write_error_stops_the_reader(tmp_path):
    source = _Trickle(os.urandom(20 * files.CHUNK))
    before = threading.active_count()
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 * files.CHUNK, limit[1]))   # writes past 2 MiB fail: EFBIG
    try:
        with files.NewFile(str(tmp_path / "dst")) as out:
            with pytest.raises(OSError, match="too large"):
                files.copy_stream(source, out)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    assert threading.active_count() == before
    assert source.pos <= (files.READ_AHEAD + 3) * files.CHUNK   # it stopped reading ahead


def test_new_file_writes_unaligned_pieces_around_o_direct(tmp_path):
    # O_DIRECT takes only aligned offsets and lengths: the rest must still land, in order
    buf = files.Buffer()
    buf.view[:] = os.urandom(files.CHUNK)
    dst = tmp_path / "dst"
    with files.NewFile(str(dst)) as out:
        assert out.pwrite(buf.view[:files.ALIGN + 5], 0) == files.ALIGN + 5         # aligned head, short tail
        assert out.pwrite(buf.view[:3 * files.ALIGN], 3 * files.ALIGN + 100) == 3 * files.ALIGN   # unaligned offset
        out.truncate(10 * files.ALIGN)
    data = dst.read_bytes()
    expected = bytearray(10 * files.ALIGN)
    expected[:files.ALIGN + 5] = buf.view[:files.ALIGN + 5]
    expected[3 * files.ALIGN + 100:6 * files.ALIGN + 100] = buf.view[:3 * files.ALIGN]
    assert data == bytes(expected)


def test_new_file_without_o_direct(tmp_path, monkeypatch):
    # a filesystem that refuses O_DIRECT (tmpfs before Linux 6.6): simulated, as the kernel answers, with EINVAL
    real_open = os.open

    def refusing(path, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing)
    files.takes_direct_io.cache_clear()
    assert files.takes_direct_io(str(tmp_path)) is False and list(tmp_path.iterdir()) == []
    files.takes_direct_io.cache_clear()
    data = os.urandom(3 * files.CHUNK + 17)
    with files.NewFile(str(tmp_path / "dst")) as out:
        assert out.direct is None
        assert files.copy_stream(io.BytesIO(data), out) == len(data)
    assert (tmp_path / "dst").read_bytes() == data


def test_staging_removes_uncommitted(tmp_path):
    final = tmp_path / "image"
    with pytest.raises(RuntimeError):
        with files.Staging(str(final)) as staging:
            temp = staging.temp()
            open(temp, "wb").write(b"half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with files.Staging(str(final)) as staging:
        temp = staging.temp()
        open(temp, "wb").write(b"whole")
        staging.temp("scratch")
        staging.commit(temp)
    assert [p.name for p in tmp_path.iterdir()] == ["image"] and final.read_bytes() == b"whole"


def test_staging_flush_ahead_is_waited_for_and_its_failure_stops_the_commit(tmp_path, monkeypatch):
    final = tmp_path / "image"
    with files.Staging(str(final)) as staging:
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
        with files.Staging(str(tmp_path / "other")) as staging:
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
        with files.Staging(str(tmp_path / "image")) as staging:
            temp = staging.temp()
            open(temp, "wb").write(b"half")
            monkeypatch.setattr(os, "unlink", unreachable)      # the volume has lost its quorum
            raise RuntimeError("write failed")
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and err.count("\n") == 1
    assert f"Could not remove the staging file {temp} (Transport endpoint is not connected)" in err


def test_remove_stale_staging_takes_only_old_staging_files(tmp_path):
    image = "0123456789abcdef0123456789abcdef"
    with files.Staging(str(tmp_path / image)) as staging:
        staged = [staging.temp(tag) for tag in ("part", "qcow2", "xml", "link")]   # every tag the actions use
    others = [image, ".direct-io.0a1b2c3d", f".{image}.md5sum", ".shard"]
    paths = [*staged, *(str(tmp_path / name) for name in others)]
    for path in paths:
        open(path, "wb").close()
    young = staged.pop()                               # written a minute ago: an action at work
    for path in paths:
        if path != young:
            os.utime(path, (time.time() - files.STALE_AFTER - 60,) * 2)
    assert sorted(files.remove_stale_staging(str(tmp_path))) == sorted(staged)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, os.path.basename(young)])


@pytest.mark.parametrize("size,padded", [(0, 0), (1, 512), (512, 512), (196616, 197120)])
def test_pad_to_sector(tmp_path, size, padded):
    path = tmp_path / "f"
    path.write_bytes(b"q" * size)
    files.pad_to_sector(str(path))
    assert os.path.getsize(path) == padded

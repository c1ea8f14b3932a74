"""Sparse copies (`core.sparse_copy`), on a local filesystem: holes, read-ahead, O_DIRECT and its
fallback, errors on either side."""

from __future__ import annotations

import errno
import io
import os
import resource
import threading

import pytest

from one_gluster.core import sparse_copy

MiB = 1 << 20


def test_copy_stream_makes_holes_of_zero_blocks(tmp_path):
    data = bytearray(8 * MiB)
    data[100:200] = b"x" * 100
    data[5 * MiB:5 * MiB + 10] = b"y" * 10
    dst = tmp_path / "dst"
    with sparse_copy.NewFile(str(dst)) as out:
        size = sparse_copy.copy_stream(io.BytesIO(bytes(data)), out)
    assert size == len(data) and dst.read_bytes() == bytes(data)
    assert os.stat(dst).st_blocks * 512 <= 2 * sparse_copy.BLOCK


@pytest.mark.parametrize("tail", [b"z" * 100, bytes(100), b"\0" * 99 + b"z"])
def test_write_sparse_short_tail_block(tmp_path, tail):
    data = bytearray(sparse_copy.CHUNK + sparse_copy.BLOCK + len(tail))
    data[sparse_copy.CHUNK - 1] = 1                                   # last byte of a block
    data[sparse_copy.CHUNK + sparse_copy.BLOCK:] = tail
    dst = tmp_path / "dst"
    with sparse_copy.NewFile(str(dst)) as out:
        assert sparse_copy.copy_stream(io.BytesIO(bytes(data)), out) == len(data)
    assert dst.read_bytes() == bytes(data)


def test_copy_file_skips_holes_and_keeps_tail(tmp_path):
    src = tmp_path / "src"
    with open(src, "wb") as f:
        f.truncate(10 * MiB + 123)
        f.seek(3 * MiB)
        f.write(os.urandom(MiB + 7))
    dst = tmp_path / "dst"
    with sparse_copy.NewFile(str(dst)) as out:
        assert sparse_copy.copy_file(str(src), out) == 10 * MiB + 123
    assert dst.read_bytes() == src.read_bytes()
    assert os.stat(dst).st_blocks * 512 <= MiB + 2 * sparse_copy.BLOCK


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
    data = os.urandom((sparse_copy.READ_AHEAD * 3 + 1) * sparse_copy.CHUNK + 4321)
    dst = tmp_path / "dst"
    with sparse_copy.NewFile(str(dst)) as out:
        assert sparse_copy.copy_stream(_Trickle(data), out) == len(data)
    assert dst.read_bytes() == data


def test_copy_stream_raises_the_source_error_and_stops_reading(tmp_path):
    data = os.urandom(20 * sparse_copy.CHUNK)
    source = _Trickle(data, fail_at=9 * sparse_copy.CHUNK)
    before = threading.active_count()
    with sparse_copy.NewFile(str(tmp_path / "dst")) as out:
        with pytest.raises(OSError, match="connection reset"):
            sparse_copy.copy_stream(source, out)
    assert threading.active_count() == before      # the reader thread is gone, not left blocked
    assert source.pos == 9 * sparse_copy.CHUNK            # nothing read past the failure


def test_copy_stream_write_error_stops_the_reader(tmp_path):
    source = _Trickle(os.urandom(20 * sparse_copy.CHUNK))
    before = threading.active_count()
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 * sparse_copy.CHUNK, limit[1]))   # writes past 2 MiB fail: EFBIG
    try:
        with sparse_copy.NewFile(str(tmp_path / "dst")) as out:
            with pytest.raises(OSError, match="too large"):
                sparse_copy.copy_stream(source, out)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    assert threading.active_count() == before
    assert source.pos <= (sparse_copy.READ_AHEAD + 3) * sparse_copy.CHUNK   # it stopped reading ahead


def test_new_file_writes_unaligned_pieces_around_o_direct(tmp_path):
    # O_DIRECT takes only aligned offsets and lengths: the rest must still land, in order
    buf = sparse_copy.Buffer()
    buf.view[:] = os.urandom(sparse_copy.CHUNK)
    dst = tmp_path / "dst"
    with sparse_copy.NewFile(str(dst)) as out:
        align = sparse_copy.ALIGN
        assert out.pwrite(buf.view[:align + 5], 0) == align + 5                          # aligned head, short tail
        assert out.pwrite(buf.view[:3 * align], 3 * align + 100) == 3 * align           # unaligned offset
        out.truncate(10 * sparse_copy.ALIGN)
    data = dst.read_bytes()
    expected = bytearray(10 * sparse_copy.ALIGN)
    expected[:sparse_copy.ALIGN + 5] = buf.view[:sparse_copy.ALIGN + 5]
    expected[3 * sparse_copy.ALIGN + 100:6 * sparse_copy.ALIGN + 100] = buf.view[:3 * sparse_copy.ALIGN]
    assert data == bytes(expected)


def test_new_file_without_o_direct(tmp_path, monkeypatch):
    # a filesystem that refuses O_DIRECT (tmpfs before Linux 6.6): simulated, as the kernel answers, with EINVAL
    real_open = os.open

    def refusing(path, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing)
    sparse_copy.takes_direct_io.cache_clear()
    assert sparse_copy.takes_direct_io(str(tmp_path)) is False and list(tmp_path.iterdir()) == []
    sparse_copy.takes_direct_io.cache_clear()
    data = os.urandom(3 * sparse_copy.CHUNK + 17)
    with sparse_copy.NewFile(str(tmp_path / "dst")) as out:
        assert out.direct is None
        assert sparse_copy.copy_stream(io.BytesIO(data), out) == len(data)
    assert (tmp_path / "dst").read_bytes() == data

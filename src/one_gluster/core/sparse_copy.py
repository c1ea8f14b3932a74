"""Sparse copies onto the volume: the source is read ahead in a thread while the writes go to the
volume through O_DIRECT where it takes it; every all-zero block stays a hole."""

from __future__ import annotations

import errno
import functools
import os
import queue
import threading
from typing import BinaryIO, Callable, Iterator, Optional

from one_gluster.core.staging import Staging, open_new, token

CHUNK = 1 << 20          # bytes read at a time
READ_AHEAD = 4           # chunks read ahead of the writes
BLOCK = 64 << 10         # granularity at which zeros become holes
ALIGN = 4096             # O_DIRECT: offsets, lengths and memory in multiples of any brick's sector size
_ZERO_CHUNK = bytes(CHUNK)
_ZERO_BLOCK = bytes(BLOCK)


class NewFile:
    """A new file (a staging name) that a copy fills.

    Whole aligned blocks go through a second descriptor opened with O_DIRECT where the filesystem
    takes it, so an import does not fill the page cache. Where the volume passes O_DIRECT on to the
    bricks (`network.remote-dio disable`: gluster's default and the virt group's), the data reaches
    their disks as it is written and the fsync before the rename finds little left to do; with
    `remote-dio enable` (the distributed-virt group) the bricks buffer it and that fsync flushes it.
    Other writes (a file's unaligned tail) go through the ordinary descriptor, which also truncates.
    """

    def __init__(self, path: str) -> None:
        self.fd = open_new(path)
        self.direct: Optional[int] = None
        try:
            self.direct = os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.EINVAL:            # EINVAL: this filesystem does not do O_DIRECT
                os.close(self.fd)
                raise

    def pwrite(self, data: memoryview, offset: int) -> int:
        """Write all of `data`, which starts at an ALIGN boundary in memory, at `offset`."""
        done = 0
        if self.direct is not None and offset % ALIGN == 0:
            done = _pwrite_all(self.direct, data[:len(data) - len(data) % ALIGN], offset)
        return done + _pwrite_all(self.fd, data[done:], offset + done)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def close(self) -> None:
        for fd in (self.direct, self.fd):
            if fd is not None:
                os.close(fd)

    def __enter__(self) -> "NewFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.lru_cache(maxsize=None)
def takes_direct_io(directory: str) -> bool:
    """Whether new files in `directory` can be opened with O_DIRECT (probed once with a hidden file),
    for commands such as `qemu-img convert -t none` that fail where they cannot."""
    probe = os.path.join(directory, f".direct-io.{token(4)}")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_DIRECT | os.O_CLOEXEC, 0o600))
        return True
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return False
    finally:
        try:
            os.unlink(probe)                     # open may create the file before it refuses O_DIRECT
        except FileNotFoundError:
            pass


class Buffer:
    """CHUNK bytes that start at an ALIGN boundary in memory, as O_DIRECT needs: `view` is what the
    source is read into; `raw` and `base` let zero tests run on the bytearray itself."""

    __slots__ = ("raw", "base", "view")

    def __init__(self) -> None:
        import ctypes  # only copies need the buffer's address

        self.raw = bytearray(CHUNK + ALIGN)
        self.base = -ctypes.addressof(ctypes.c_char.from_buffer(self.raw)) % ALIGN
        self.view = memoryview(self.raw)[self.base:self.base + CHUNK]

    def is_zero(self, start: int, end: int) -> bool:
        """Whether bytes `start:end` of the view are all zero: `bytearray.startswith` is a memcmp, where
        comparing a memoryview with bytes goes item by item (~2 ms a MiB, slower than the volume takes
        the writes)."""
        length = end - start
        zeros = _ZERO_CHUNK if length == CHUNK else _ZERO_BLOCK if length == BLOCK else bytes(length)
        return self.raw.startswith(zeros, self.base + start, self.base + end)


def write_sparse(out: NewFile, offset: int, buf: Buffer, length: int) -> int:
    """Write the first `length` bytes of `buf` at `offset`, leaving every all-zero BLOCK as a hole;
    return the bytes written."""
    if length == CHUNK and buf.is_zero(0, CHUNK):
        return 0
    written = 0
    start = None                       # start of the current run of non-zero blocks
    for pos in range(0, length, BLOCK):
        zero = buf.is_zero(pos, min(pos + BLOCK, length))
        if not zero and start is None:
            start = pos
        elif zero and start is not None:
            written += out.pwrite(buf.view[start:pos], offset + start)
            start = None
    if start is not None:
        written += out.pwrite(buf.view[start:length], offset + start)
    return written


def _pwrite_all(fd: int, data: memoryview, offset: int) -> int:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)
    return done


def _fill(src: BinaryIO, view: memoryview) -> int:
    """Read until `view` is full or the stream ends; return how much was read."""
    got = 0
    while got < len(view):
        n = src.readinto(view[got:])
        if not n:
            break
        got += n
    return got


Fill = Callable[[memoryview], Optional[tuple[int, int]]]


def _write_read_ahead(fill: Fill, out: NewFile) -> None:
    """Write into `out`, sparsely, each `(offset, length)` of data that `fill(view)` puts in `view`
    (None at the end), with `fill` running ahead in a thread: reading the source (disk, network,
    hashing, unpacking: all outside the GIL) overlaps the writes to the volume instead of adding to
    them. An exception of `fill` is raised here."""
    free: queue.Queue = queue.Queue()
    ready: queue.Queue = queue.Queue()
    for _ in range(READ_AHEAD):
        free.put(Buffer())
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                buf = free.get()
                if buf is None:
                    return
                got = fill(buf.view)
                ready.put((buf, got))
                if got is None:
                    return
        except BaseException as exc:            # handed to the writer
            ready.put(exc)

    reader = threading.Thread(target=read, name="read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            buf, got = item
            if got is None:
                return
            write_sparse(out, got[0], buf, got[1])
            free.put(buf)
    finally:
        stop.set()
        free.put(None)                          # wakes the reader if it waits for a buffer
        reader.join()


def copy_stream(src: BinaryIO, out: NewFile) -> int:
    """Copy a sequential stream into `out` sparsely; return the logical size copied."""
    offset = 0

    def fill(view: memoryview) -> Optional[tuple[int, int]]:
        nonlocal offset
        n = _fill(src, view)
        if not n:
            return None
        offset += n
        return offset - n, n

    _write_read_ahead(fill, out)
    out.truncate(offset)
    return offset


def _data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the data regions of a local file; the whole file where holes are not seen."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:      # only a hole remains
                return
            yield pos, size                   # the filesystem cannot tell: treat all as data
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        pos = end


def _extent_chunks(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of every chunk of the data regions of a local file."""
    for start, end in _data_extents(fd, size):
        for offset in range(start, end, CHUNK):
            yield offset, min(CHUNK, end - offset)


def copy_file(src_path: str, out: NewFile) -> int:
    """Copy a local file into `out`, skipping its holes and its zero blocks; return its size."""
    src = os.open(src_path, os.O_RDONLY)
    try:
        size = os.fstat(src).st_size
        chunks = _extent_chunks(src, size)

        def fill(view: memoryview) -> Optional[tuple[int, int]]:
            for offset, length in chunks:
                n = os.preadv(src, [view[:length]], offset)
                if n:
                    return offset, n
            return None

        _write_read_ahead(fill, out)
        out.truncate(size)
        return size
    finally:
        os.close(src)


def allocate(path: str) -> None:
    """Reserve every block of the file (for datastores that ask for SPARSE=no)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        size = os.fstat(fd).st_size
        if size:
            os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)


def copy_staged(src_path: str, final: str) -> None:
    """Sparse copy of a local file to `final`, which appears only complete (staged, fsync'ed, renamed)."""
    with Staging(final) as staging:
        temp = staging.temp()
        copy_to_new(src_path, temp)
        staging.commit(temp)


def copy_to_new(src_path: str, dst_path: str) -> int:
    """Sparse copy of a local file into a new file `dst_path` (a staging name); return its size."""
    with NewFile(dst_path) as out:
        return copy_file(src_path, out)

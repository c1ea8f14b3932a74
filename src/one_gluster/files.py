"""Files on the volume: staged writes renamed into place, sparse copies, and the 512-byte rule."""

from __future__ import annotations

import errno
import os
import queue
import secrets
import shutil
import threading
from typing import BinaryIO, Callable, Iterator, Optional

SECTOR = 512
CHUNK = 1 << 20          # bytes read at a time
READ_AHEAD = 4           # chunks read ahead of the writes
BLOCK = 64 << 10         # granularity at which zeros become holes
_ZERO_CHUNK = bytes(CHUNK)
_ZERO_BLOCK = bytes(BLOCK)


def pad_to_sector(path: str) -> None:
    """Extend a file to the next multiple of 512 bytes (qcow2 ignores bytes past its last cluster)."""
    size = os.stat(path).st_size
    if size % SECTOR:
        os.truncate(path, size + SECTOR - size % SECTOR)


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

    def temp(self, tag: str = "part") -> str:
        """A new temporary name in the final file's directory (same filesystem, so rename is atomic)."""
        path = os.path.join(self._dir, f".{self._base}.{secrets.token_hex(4)}.{tag}")
        self._temps.append(path)
        return path

    def commit(self, temp: str) -> None:
        """fsync `temp` and rename it over the final name."""
        fsync_path(temp)
        os.replace(temp, self.final)
        self._temps.remove(temp)

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc: object) -> None:
        for path in self._temps:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def write_sparse(fd: int, offset: int, buf: bytearray, length: int) -> int:
    """Write `buf[:length]` at `offset`, leaving every all-zero 64 KiB block as a hole; return the
    bytes written. Zeros are found with `bytearray.startswith`, a memcmp: comparing a memoryview
    with bytes goes item by item (~2 ms a MiB, slower than the volume takes the writes)."""
    if length == CHUNK and buf.startswith(_ZERO_CHUNK, 0, CHUNK):
        return 0
    data = memoryview(buf)
    written = 0
    start = None                       # start of the current run of non-zero blocks
    for pos in range(0, length, BLOCK):
        end = min(pos + BLOCK, length)
        zero = buf.startswith(_ZERO_BLOCK if end - pos == BLOCK else bytes(end - pos), pos, end)
        if not zero and start is None:
            start = pos
        elif zero and start is not None:
            written += _pwrite_all(fd, data[start:pos], offset + start)
            start = None
    if start is not None:
        written += _pwrite_all(fd, data[start:length], offset + start)
    return written


def _pwrite_all(fd: int, data: memoryview, offset: int) -> int:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)
    return done


def _fill(src: BinaryIO, buf: bytearray) -> int:
    """Read until `buf` is full or the stream ends; return how much was read."""
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        n = src.readinto(view[got:])
        if not n:
            break
        got += n
    return got


Fill = Callable[[bytearray], Optional[tuple[int, int]]]


def _write_read_ahead(fill: Fill, fd: int) -> None:
    """Write into `fd`, sparsely, each `(offset, length)` of data that `fill(buf)` puts in `buf`
    (None at the end), with `fill` running ahead in a thread: reading the source (disk, network,
    hashing, unpacking: all outside the GIL) overlaps the writes to the volume instead of adding to
    them. An exception of `fill` is raised here."""
    free: queue.Queue = queue.Queue()
    ready: queue.Queue = queue.Queue()
    for _ in range(READ_AHEAD):
        free.put(bytearray(CHUNK))
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                buf = free.get()
                if buf is None:
                    return
                got = fill(buf)
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
            write_sparse(fd, got[0], buf, got[1])
            free.put(buf)
    finally:
        stop.set()
        free.put(None)                          # wakes the reader if it waits for a buffer
        reader.join()


def copy_stream(src: BinaryIO, fd: int) -> int:
    """Copy a sequential stream into `fd` sparsely; return the logical size copied."""
    offset = 0

    def fill(buf: bytearray) -> Optional[tuple[int, int]]:
        nonlocal offset
        n = _fill(src, buf)
        if not n:
            return None
        offset += n
        return offset - n, n

    _write_read_ahead(fill, fd)
    os.ftruncate(fd, offset)
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


def copy_file(src_path: str, fd: int) -> int:
    """Copy a local file into `fd`, skipping its holes and its zero blocks; return its size."""
    src = os.open(src_path, os.O_RDONLY)
    try:
        size = os.fstat(src).st_size
        chunks = _extent_chunks(src, size)

        def fill(buf: bytearray) -> Optional[tuple[int, int]]:
            for offset, length in chunks:
                n = os.preadv(src, [memoryview(buf)[:length]], offset)
                if n:
                    return offset, n
            return None

        _write_read_ahead(fill, fd)
        os.ftruncate(fd, size)
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


def remove_tree(path: str) -> bool:
    """Remove a file or a directory tree; return whether anything was there."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
        return True
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def unique_name(directory: str, token_bytes: int = 16) -> str:
    """A fresh name in `directory` that exists nowhere else on the volume (32 hex digits)."""
    while True:
        name = secrets.token_hex(token_bytes)
        if not os.path.lexists(os.path.join(directory, name)):
            return name


def open_new(path: str, mode: int = 0o644) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)


def ceil_mb(size_bytes: int) -> int:
    return -(-size_bytes // (1 << 20))


def snapshot_copy(path: str, snap_id: int) -> str:
    """Where a raw image or disk keeps snapshot `snap_id`: a full copy in `<path>.snap/<id>`
    (the DS and the TM driver both keep raw snapshots there)."""
    return os.path.join(f"{path}.snap", str(snap_id))


def copy_staged(src_path: str, final: str) -> None:
    """Sparse copy of a local file to `final`, which appears only complete (staged, fsync'ed, renamed)."""
    with Staging(final) as staging:
        temp = staging.temp()
        copy_to_new(src_path, temp)
        staging.commit(temp)


def copy_to_new(src_path: str, dst_path: str) -> int:
    """Sparse copy of a local file into a new file `dst_path` (a staging name); return its size."""
    fd = open_new(dst_path)
    try:
        return copy_file(src_path, fd)
    finally:
        os.close(fd)

"""Where images come from: local paths under OpenNebula's SAFE_DIRS / RESTRICTED_DIRS rules, and
http(s) URLs (at most LIMIT_TRANSFER_BW); gzip, bzip2 and xz unpacked on the fly; MD5 / SHA1 verified
on the bytes as fetched."""

from __future__ import annotations

import io
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Iterator, Optional

from one_gluster.core import qemu, sparse_copy, staging
from one_gluster.core.ds_request import DS_FILE, Datastore
from one_gluster.core.errors import DriverError
from one_gluster.core.template import Template

if TYPE_CHECKING:
    import hashlib

# Modules that only some imports need (unpacking, checksums, URLs, a compressed image's header) are
# imported where they are used: every `cp` pays for what it imports before its first byte is written.

URL_SCHEMES = ("http", "https")
HEAD_BYTES = 1 << 20      # enough of an image's start for qemu-img to read its header
TIMEOUT = 60
# Magic numbers of the compressions OpenNebula's downloader unpacks.
_COMPRESSIONS = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))
# LIMIT_TRANSFER_BW's suffixes, 1024-based as in curl's --limit-rate, which OpenNebula's downloader uses.
_RATE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass(frozen=True)
class PathRules:
    """SAFE_DIRS and RESTRICTED_DIRS as OpenNebula's libfs.sh applies them.

    RESTRICTED_DIRS always starts with OpenNebula's own var and etc directories and the driver
    user's home; the datastore's list follows. A path (resolved like `readlink -f`) is allowed
    when it starts with a safe dir; otherwise refused when it starts with a restricted dir. The
    comparison is a plain string prefix, exactly as OpenNebula's `grep "^$dir"` does it.
    """

    safe: tuple[str, ...]
    restricted: tuple[str, ...]

    @classmethod
    def from_template(cls, template: Template, environ: Optional[dict[str, str]] = None) -> "PathRules":
        env = os.environ if environ is None else environ
        location = env.get("ONE_LOCATION")
        var, etc = (f"{location}/var/", f"{location}/etc/") if location else ("/var/lib/one/", "/etc/one/")
        defaults = (var, etc, f"{env.get('HOME', '')}/")
        return cls(
            safe=tuple(template.get("SAFE_DIRS").split()),
            restricted=defaults + tuple(template.get("RESTRICTED_DIRS").split()),
        )

    def allows(self, resolved: str) -> bool:
        if any(resolved.startswith(d) for d in self.safe):
            return True
        return not any(resolved.startswith(d) for d in self.restricted)


def transfer_rate(text: str) -> Optional[int]:
    """LIMIT_TRANSFER_BW in bytes per second (K, M, G suffixes as curl reads them); None: no limit."""
    value = text.strip()
    number, unit = (value[:-1], value[-1].lower()) if value[-1:].isalpha() else (value, "")
    try:
        amount = float(number) if value else 0.0
    except ValueError:
        amount = math.nan
    if unit not in _RATE_UNITS or not (0 <= amount < math.inf):
        raise DriverError(f"LIMIT_TRANSFER_BW {text!r} in the datastore template is not a rate: "
                          "give bytes per second, optionally with a K, M or G suffix")
    return int(amount * _RATE_UNITS[unit]) or None


@dataclass(frozen=True)
class Fetch:
    """How a datastore takes images in: its path rules, whether it unpacks, its download rate limit."""

    paths: PathRules
    decompress: bool
    rate: Optional[int]             # bytes per second for http(s) downloads; None: no limit

    @classmethod
    def for_datastore(cls, ds: Datastore) -> "Fetch":
        """As OpenNebula's fs driver reads the datastore: a file datastore (TYPE 2) does not unpack
        unless NO_DECOMPRESS says otherwise."""
        return cls(paths=PathRules.from_template(ds.template),
                   decompress=not ds.template.flag("NO_DECOMPRESS", default=ds.type == DS_FILE),
                   rate=transfer_rate(ds.template.get("LIMIT_TRANSFER_BW")))


def _scheme(path: str) -> str:
    if path.startswith("/"):            # a local path: no scheme
        return ""
    from urllib.parse import urlsplit

    return urlsplit(path).scheme


def is_url(path: str) -> bool:
    return _scheme(path).lower() in URL_SCHEMES


def check_path(path: str, rules: PathRules) -> str:
    """Resolve a local image path and apply the datastore's rules; return the resolved path."""
    if "://" in path and _scheme(path):
        raise DriverError(f"Unsupported image source {path}: only local files and http(s) URLs are handled")
    if not path.startswith("/"):
        raise DriverError(f"Image path {path!r} is not absolute")
    resolved = os.path.realpath(path)
    if not rules.allows(resolved):
        raise DriverError(f"Not allowed to copy image from {path}, check RESTRICTED_DIRS in your datastore")
    if not os.path.exists(resolved):
        raise DriverError(f"Image file {path} does not exist")
    if not os.path.isfile(resolved):
        raise DriverError(f"Image path {path} is not a regular file")
    if not os.access(resolved, os.R_OK):
        raise DriverError(f"Image file {path} is not readable by the driver's user ({staging.ownership(resolved)})")
    return resolved


@contextmanager
def open_url(url: str, method: str = "GET") -> Iterator[BinaryIO]:
    import urllib.error
    import urllib.request

    try:
        request = urllib.request.Request(url, method=method, headers={"User-Agent": "one-gluster"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            yield response
    except urllib.error.HTTPError as exc:
        raise DriverError(f"Cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DriverError(f"Cannot download {url}: {reason}") from None


class Throttled(io.RawIOBase):
    """A reader that keeps the average rate since its start at or under `rate` bytes per second, in
    reads of a tenth of a second's worth at most, so that the link sees no long bursts."""

    def __init__(self, raw: BinaryIO, rate: int) -> None:
        self.raw, self.rate = raw, rate
        self.step = max(rate // 10, 4096)
        self.start, self.done = time.monotonic(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        n = self.raw.readinto(memoryview(buf)[:self.step]) or 0
        self.done += n
        ahead = self.done / self.rate - (time.monotonic() - self.start)
        if ahead > 0:
            time.sleep(ahead)
        return n


def _limited(response: BinaryIO, rate: Optional[int]) -> BinaryIO:
    return Throttled(response, rate) if rate else response  # type: ignore[return-value]


class Hashing(io.RawIOBase):
    """A reader that feeds every byte it passes on into hashers."""

    def __init__(self, raw: BinaryIO, hashers: list) -> None:
        self.raw, self.hashers = raw, hashers

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        n = self.raw.readinto(buf)
        if n:
            for h in self.hashers:
                h.update(memoryview(buf)[:n])
        return n or 0


def fetch_into(path: str, fetch: Fetch, out: sparse_copy.NewFile, hashers: list) -> int:
    """Write the image from `path` into `out`, sparse; return its size.

    A plain local file that needs no checksum is copied extent by extent, skipping its holes;
    everything else is streamed, hashed as fetched and unpacked on the way.
    """
    if is_url(path):
        with open_url(path) as response:
            return _stream_into(_limited(response, fetch.rate), out, hashers, fetch.decompress)
    resolved = check_path(path, fetch.paths)
    with open(resolved, "rb") as f:
        if not hashers and not (fetch.decompress and compression_of(f.read(8))):
            return sparse_copy.copy_file(resolved, out)
        f.seek(0)
        return _stream_into(f, out, hashers, fetch.decompress)


def _stream_into(raw: BinaryIO, out: sparse_copy.NewFile, hashers: list, decompress: bool) -> int:
    stream = io.BufferedReader(Hashing(raw, hashers), sparse_copy.CHUNK)  # type: ignore[arg-type]
    return sparse_copy.copy_stream(unpacked(stream, decompress), out)


def expected_checksums(template: Template) -> dict[str, str]:
    """MD5 / SHA1 from the image template: algorithm name to expected hex digest."""
    return {algo: template.get(key).lower() for key, algo in (("MD5", "md5"), ("SHA1", "sha1")) if template.get(key)}


def hashers_for(expected: dict[str, str]) -> dict[str, "hashlib._Hash"]:
    """A fresh hasher for each algorithm of `expected`."""
    if not expected:
        return {}
    import hashlib

    return {algo: hashlib.new(algo) for algo in expected}


def compression_of(head: bytes) -> Optional[str]:
    return next((name for magic, name in _COMPRESSIONS if head.startswith(magic)), None)


def unpacked(stream: io.BufferedReader, decompress: bool) -> BinaryIO:
    """The image inside a possibly compressed stream."""
    kind = compression_of(stream.peek(8)[:8]) if decompress else None
    if kind == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=stream, mode="rb")
    if kind == "bzip2":
        import bz2

        return bz2.BZ2File(stream)
    if kind == "xz":
        import lzma

        return lzma.LZMAFile(stream)
    return stream


def verify(hashers: dict[str, "hashlib._Hash"], expected: dict[str, str], path: str) -> None:
    for algo, want in expected.items():
        got = hashers[algo].hexdigest()
        if got != want:
            raise DriverError(f"{algo.upper()} checksum of {path} does not match: expected {want}, got {got}")


def _read_head(stream: BinaryIO) -> bytes:
    chunks, got = [], 0
    while got < HEAD_BYTES:
        data = stream.read(HEAD_BYTES - got)
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def _head_info(head: bytes) -> tuple[str, Optional[int]]:
    """Format and virtual size read from the first bytes of an image (size None for raw)."""
    import tempfile

    with tempfile.NamedTemporaryFile(prefix="one-gluster-head-") as tmp:
        tmp.write(head)
        tmp.flush()
        data = qemu.info(tmp.name)
    fmt = data.get("format", "raw")
    return fmt, None if fmt == "raw" else int(data["virtual-size"])


def _count(stream: BinaryIO) -> int:
    total = 0
    while True:
        data = stream.read(1 << 20)
        if not data:
            return total
        total += len(data)


def image_size(path: str, fetch: Fetch) -> Optional[int]:
    """The size in bytes an image from `path` will have in the datastore (virtual size for qcow2
    etc.), or None for a remote raw image whose length cannot be known without downloading it."""
    if not is_url(path):
        resolved = check_path(path, fetch.paths)
        with open(resolved, "rb") as f:
            stream = io.BufferedReader(f)  # type: ignore[arg-type]
            inner = unpacked(stream, fetch.decompress)
            if inner is stream:
                return int(qemu.info(resolved).get("virtual-size", os.path.getsize(resolved)))
            head = _read_head(inner)
            fmt, vsize = _head_info(head)
            return vsize if vsize is not None else len(head) + _count(inner)
    with open_url(path, "HEAD") as response:
        length = response.headers.get("OpenNebula-AppMarket-Size") or response.headers.get("Content-Length")
    with open_url(path) as response:
        stream = io.BufferedReader(_limited(response, fetch.rate))  # type: ignore[arg-type]
        inner = unpacked(stream, fetch.decompress)
        fmt, vsize = _head_info(_read_head(inner))
        if vsize is not None:
            return vsize
        if inner is stream and length and length.strip().isdigit():
            return int(length)
    return None

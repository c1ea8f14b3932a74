"""DS `cp` and `stat` against the real volume: local files, URLs, compression, checksums, formats."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import os
import ssl
import subprocess
import time
from pathlib import Path

import pytest

import onedsim
from support.images import allocated, make_raw, qemu_img
from support.net import serve

MiB = 1 << 20


@pytest.fixture(scope="module")
def raw_image(sources_dir) -> Path:
    """64 MiB raw with 3 MiB of data in three places."""
    return make_raw(sources_dir / "disk.raw", 64 * MiB,
                    {0: os.urandom(MiB), 20 * MiB: os.urandom(MiB), 63 * MiB: os.urandom(MiB)})


@pytest.fixture(scope="module")
def qcow2_image(raw_image, sources_dir) -> Path:
    path = sources_dir / "disk.qcow2"
    qemu_img("convert", "-O", "qcow2", str(raw_image), str(path))
    return path


@pytest.fixture(scope="module")
def https_root(sources_dir, tmp_path_factory):
    """A loopback HTTPS server serving the sources directory, with a self-signed certificate."""
    keys = tmp_path_factory.mktemp("tls")
    cert, key = keys / "cert.pem", keys / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = serve(sources_dir, context)
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()


def image(path, **kw):
    return onedsim.image(0, path=str(path), **kw)


def stored(ds, stdout: str) -> tuple[Path, str]:
    """The SOURCE and FORMAT cp printed, checked to be one line naming a file in the datastore."""
    assert stdout.endswith("\n") and stdout.count("\n") == 1
    source, fmt = stdout.split()
    assert source.startswith(ds.base_path + "/")
    name = os.path.basename(source)
    assert len(name) == 32 and int(name, 16) >= 0
    return Path(source), fmt


def test_cp_raw_is_byte_identical_and_sparse(ds, raw_image):
    source, fmt = stored(ds, ds.ok("cp", image(raw_image)))
    assert fmt == "raw"
    assert source.read_bytes() == raw_image.read_bytes()
    assert allocated(source) <= 4 * MiB             # 3 MiB of data in a 64 MiB file
    assert os.path.realpath(source).startswith(os.path.realpath(ds.base_path))


def test_cp_qcow2_keeps_format_and_is_512_aligned(ds, qcow2_image, raw_image):
    source, fmt = stored(ds, ds.ok("cp", image(qcow2_image)))
    assert fmt == "qcow2"
    assert os.path.getsize(source) % 512 == 0
    qemu_img("compare", str(raw_image), str(source))


def test_cp_converts_to_datastore_driver(ds, raw_image):
    source, fmt = stored(ds, ds.ok("cp", image(raw_image), ds_template={"DRIVER": "qcow2"}))
    assert fmt == "qcow2"
    assert json.loads(qemu_img("info", "--output=json", str(source)))["format"] == "qcow2"
    assert os.path.getsize(source) % 512 == 0
    qemu_img("compare", str(raw_image), str(source))


def test_cp_never_converts_cdrom(ds, raw_image):
    source, fmt = stored(ds, ds.ok("cp", image(raw_image, image_type=1), ds_template={"DRIVER": "qcow2"}))
    assert fmt == "raw"
    assert source.read_bytes() == raw_image.read_bytes()


def test_cp_convert_no_keeps_the_format(ds, raw_image):
    source, fmt = stored(ds, ds.ok("cp", image(raw_image), ds_template={"DRIVER": "qcow2", "CONVERT": "NO"}))
    assert fmt == "raw"
    assert source.read_bytes() == raw_image.read_bytes()


def test_cp_into_a_file_datastore_keeps_files_as_they_are(ds, raw_image, sources_dir):
    """A file datastore (TYPE 2: kernels, initrds, context files) neither converts nor unpacks."""
    packed = sources_dir / "initrd.gz"
    packed.write_bytes(gzip.compress(raw_image.read_bytes()[:MiB]))
    file_ds = {"DRIVER": "qcow2", "TYPE": "FILE_DS"}
    for path in (raw_image, packed):
        source, fmt = stored(ds, ds.ok("cp", image(path), ds_template=file_ds, ds_type=2))
        assert fmt == "raw"
        assert source.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("suffix,compress", [("gz", gzip.compress), ("bz2", bz2.compress), ("xz", lzma.compress)])
def test_cp_unpacks_compressed(ds, raw_image, sources_dir, suffix, compress):
    packed = sources_dir / f"disk.raw.{suffix}"
    packed.write_bytes(compress(raw_image.read_bytes()))
    source, fmt = stored(ds, ds.ok("cp", image(packed)))
    assert fmt == "raw"
    assert source.read_bytes() == raw_image.read_bytes()
    assert allocated(source) <= 4 * MiB


def test_cp_no_decompress_stores_as_is(ds, raw_image, sources_dir):
    packed = sources_dir / "kept.raw.gz"
    packed.write_bytes(gzip.compress(raw_image.read_bytes()))
    source, _ = stored(ds, ds.ok("cp", image(packed), ds_template={"NO_DECOMPRESS": "YES"}))
    assert source.read_bytes() == packed.read_bytes()


def test_cp_verifies_checksums(ds, qcow2_image):
    data = qcow2_image.read_bytes()
    good = {"MD5": hashlib.md5(data).hexdigest(), "SHA1": hashlib.sha1(data).hexdigest().upper()}
    stored(ds, ds.ok("cp", image(qcow2_image, template=good)))


def test_cp_wrong_checksum_leaves_nothing(ds, qcow2_image):
    before = ds.entries()
    result = ds.call("cp", image(qcow2_image, template={"MD5": "0" * 32}))
    assert result.returncode != 0
    assert result.plain_errors == [result.plain_errors[0]] and "MD5 checksum" in result.plain_errors[0]
    assert ds.entries() == before


def test_cp_from_http(ds, http_root, qcow2_image, raw_image):
    source, fmt = stored(ds, ds.ok("cp", image(f"{http_root}/{qcow2_image.name}")))
    assert fmt == "qcow2"
    qemu_img("compare", str(raw_image), str(source))


def test_cp_from_https_checks_the_certificate(ds, https_root, qcow2_image, raw_image):
    """An untrusted certificate is refused in one line; once trusted (here through OpenSSL's
    SSL_CERT_FILE, standing in for the system's store) the image comes in."""
    root, cert = https_root
    url = f"{root}/{qcow2_image.name}"
    before = ds.entries()
    result = ds.call("cp", image(url))
    assert result.returncode != 0 and len(result.plain_errors) == 1
    assert result.plain_errors[0].startswith(f"Cannot download {url}: [SSL: CERTIFICATE_VERIFY_FAILED]")
    assert "Traceback" not in result.stderr and ds.entries() == before
    source, fmt = stored(ds, ds.ok("cp", image(url), env={"SSL_CERT_FILE": str(cert)}))
    assert fmt == "qcow2"
    qemu_img("compare", str(raw_image), str(source))


def test_cp_download_keeps_to_limit_transfer_bw(ds, http_root, sources_dir):
    """LIMIT_TRANSFER_BW caps the download rate (bytes per second, curl's K/M/G suffixes)."""
    small = sources_dir / "small.raw"
    small.write_bytes(os.urandom(3 * MiB // 2))
    url = f"{http_root}/{small.name}"
    start = time.monotonic()
    source, _ = stored(ds, ds.ok("cp", image(url), ds_template={"LIMIT_TRANSFER_BW": "1M"}))
    assert time.monotonic() - start >= 1.45              # 1.5 MiB at 1 MiB/s
    assert source.read_bytes() == small.read_bytes()


def test_cp_bad_limit_transfer_bw_leaves_nothing(ds, http_root, raw_image):
    before = ds.entries()
    result = ds.call("cp", image(f"{http_root}/{raw_image.name}"), ds_template={"LIMIT_TRANSFER_BW": "fast"})
    assert result.returncode != 0
    assert result.plain_errors == ["LIMIT_TRANSFER_BW 'fast' in the datastore template is not a rate: "
                                   "give bytes per second, optionally with a K, M or G suffix"]
    assert ds.entries() == before


def test_cp_http_errors_are_one_line(ds, http_root):
    before = ds.entries()
    for url, text in ((f"{http_root}/missing.img", "HTTP 404"), ("http://127.0.0.1:1/x.img", "Cannot download")):
        result = ds.call("cp", image(url))
        assert result.returncode != 0 and len(result.plain_errors) == 1
        assert text in result.plain_errors[0]
        assert "Traceback" not in result.stderr
    assert ds.entries() == before


@pytest.mark.parametrize("path,text", [
    ("/etc/passwd", "Not allowed to copy image from /etc/passwd, check RESTRICTED_DIRS"),
    ("relative/disk.img", "is not absolute"),
    ("s3://bucket/disk.img", "Unsupported image source"),
])
def test_cp_refuses_bad_paths(ds, path, text):
    before = ds.entries()
    result = ds.call("cp", image(path))
    assert result.returncode != 0
    assert len(result.plain_errors) == 1 and text in result.plain_errors[0]
    assert ds.entries() == before


def test_cp_refuses_symlink_escaping_safe_dirs(ds, sources_dir):
    link = sources_dir / "sneaky.img"
    link.symlink_to("/etc/hostname")
    result = ds.call("cp", image(link))
    assert result.returncode != 0 and "Not allowed to copy image" in result.plain_errors[0]


def test_cp_missing_file(ds, sources_dir):
    result = ds.call("cp", image(sources_dir / "nope.img"))
    assert result.returncode != 0 and result.plain_errors == [f"Image file {sources_dir / 'nope.img'} does not exist"]


def test_cp_refuses_image_with_backing_file(ds, qcow2_image, sources_dir):
    overlay = sources_dir / "overlay.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", str(qcow2_image), "-F", "qcow2", str(overlay))
    before = ds.entries()
    result = ds.call("cp", image(overlay))
    assert result.returncode != 0 and "backing file" in result.plain_errors[0]
    assert ds.entries() == before


def test_cp_unknown_driver(ds, raw_image):
    result = ds.call("cp", image(raw_image), ds_template={"DRIVER": "vmdk-ish"})
    assert result.returncode != 0 and "Unknown DRIVER" in result.plain_errors[0]


def test_stat_sizes(ds, raw_image, qcow2_image, sources_dir, http_root):
    odd = make_raw(sources_dir / "odd.raw", 5 * MiB + 1, {0: b"x"})
    packed = sources_dir / "stat.raw.xz"
    packed.write_bytes(lzma.compress(raw_image.read_bytes()))
    cases = {
        raw_image: "64", qcow2_image: "64", odd: "6", packed: "64",
        f"{http_root}/{raw_image.name}": "64", f"{http_root}/{qcow2_image.name}": "64",
    }
    for path, size in cases.items():
        assert ds.ok("stat", onedsim.stat_image(str(path))) == size + "\n", path


def test_stat_refuses_restricted(ds):
    result = ds.call("stat", onedsim.stat_image("/etc/passwd"))
    assert result.returncode != 0 and "RESTRICTED_DIRS" in result.plain_errors[0]

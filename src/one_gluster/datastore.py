"""The datastore (DS_MAD) actions: each takes the parsed request and returns the line for stdout.

Images live at `BASE_PATH/<32 hex digits>` on the FUSE mount. Image snapshots are kept the way
the TM keeps disk snapshots, so that the active image never moves away from SOURCE (OpenNebula
core opens `GLUSTER_VOLUME/<basename of SOURCE>` for persistent disks): qcow2 images hold them as
internal snapshots named by `qemu.snapshot_tag`, raw images as full copies in `SOURCE.snap/<id>`.
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import Callable, Optional

from lxml import etree

from . import filesystems, files, log, qemu, sources
from .errors import DriverError, RequestError
from .request import DS_FILE, IMAGE_CDROM, Datastore, DsRequest, Image
from .volume import MountedPath, Volume, require_mount

MiB = 1 << 20


def _mounted_base(ds: Datastore) -> tuple[str, MountedPath]:
    """BASE_PATH as oned gave it, and its place on a proven live mount of GLUSTER_VOLUME."""
    base = ds.require_base_path()
    mounted = require_mount(base, Volume.from_template(ds.template))
    os.makedirs(mounted.path, exist_ok=True)
    return base, mounted


def _new_image_path(ds: Datastore) -> tuple[str, str]:
    """(SOURCE as OpenNebula will store it, the real path to write) for a new image."""
    base, mounted = _mounted_base(ds)
    name = files.unique_name(mounted.path)
    return f"{base.rstrip('/')}/{name}", os.path.join(mounted.path, name)


def _target_format(ds: Datastore, image: Image, detected: str) -> str:
    """The format to store: the datastore's DRIVER where set, except for CD-ROMs and LUKS."""
    driver = ds.template.get("DRIVER").lower()
    if not driver or image.type == IMAGE_CDROM or detected == "luks":
        return detected
    if driver not in qemu.TARGET_FORMATS:
        raise DriverError(f"Unknown DRIVER {driver!r} in the datastore template: use raw or qcow2")
    return driver


def _decompress(ds: Datastore) -> bool:
    default = "yes" if ds.type == DS_FILE else "no"
    return ds.template.get("NO_DECOMPRESS", default).lower() not in ("yes", "true", "1")


def _image_source(image: Image, ds: Datastore) -> str:
    """SOURCE of an existing image, refused unless it is a direct child of BASE_PATH."""
    if not image.source:
        raise RequestError("The image has no SOURCE")
    _, mounted = _mounted_base(ds)
    real_dir = os.path.realpath(os.path.dirname(image.source))
    name = os.path.basename(image.source)
    if real_dir != mounted.path or name in ("", ".", ".."):
        raise DriverError(f"Image source {image.source} is not inside the datastore directory {ds.base_path}")
    return os.path.join(real_dir, name)


def cp(req: DsRequest) -> str:
    """Import IMAGE/PATH (file or URL): fetch, unpack, verify, convert, store sparse. Prints SOURCE FORMAT."""
    image, ds = req.require_image(), req.datastore
    if not image.path:
        raise RequestError("The image has no PATH to copy from")
    rules = sources.PathRules.from_template(ds.template)
    source, final = _new_image_path(ds)
    expected = sources.expected_checksums(image.template)
    hashers = {algo: hashlib.new(algo) for algo in expected}
    log.info(f"Copying {image.path} into {source}")
    with files.Staging(final) as staging:
        temp = staging.temp()
        fd = files.open_new(temp)
        try:
            with sources.open_source(image.path, rules) as raw:
                stream = io.BufferedReader(sources.Hashing(raw, list(hashers.values())), files.CHUNK)
                size = files.copy_stream(sources.unpacked(stream, _decompress(ds)), fd)
        finally:
            os.close(fd)
        sources.verify(hashers, expected, image.path)
        detected = qemu.inspect_untrusted(temp)["format"]
        fmt = _target_format(ds, image, detected)
        if fmt != detected:
            log.info(f"Converting {detected} image into {fmt}")
            converted = staging.temp()
            qemu.convert(temp, converted, fmt, src_fmt=detected)
            temp = converted
        elif fmt == "qcow2":
            files.pad_to_sector(temp)
        if not ds.template.flag("SPARSE", default=True):
            _allocate(temp)
        staging.commit(temp)
    log.info(f"Imported {size} bytes as {fmt} image {source}")
    return f"{source} {qemu.reported_format(fmt)}"


def _allocate(path: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        files.allocate(fd)
    finally:
        os.close(fd)


def stat(req: DsRequest) -> str:
    """Size in MB (rounded up) of the image that `cp` would make from IMAGE/PATH."""
    image, ds = req.require_image(), req.datastore
    if not image.path:
        raise RequestError("The image has no PATH to measure")
    size = sources.image_size(image.path, sources.PathRules.from_template(ds.template), _decompress(ds))
    if size is None:
        if image.size_mb:
            return str(image.size_mb)
        raise DriverError(
            f"Cannot tell the size of the raw image at {image.path} without downloading it: "
            "set SIZE in the image template"
        )
    return str(files.ceil_mb(size))


def mkfs(req: DsRequest) -> str:
    """A new empty raw or qcow2 image of SIZE MB, with FS made inside when asked. Prints SOURCE."""
    image, ds = req.require_image(), req.datastore
    fmt = (image.format or "raw").lower()
    source, final = _new_image_path(ds)
    if fmt == "save_as":
        return source                       # TM cpds fills it in later
    if fmt not in qemu.TARGET_FORMATS:
        raise DriverError(f"Unknown image format {image.format!r}: use raw or qcow2")
    if not image.size_mb or image.size_mb <= 0:
        raise RequestError("A new empty image needs a SIZE in MB")
    fs = filesystems.check(image.fs) if image.fs else ""
    log.info(f"Creating {image.size_mb} MB {fmt} image {source}" + (f" with {fs}" if fs else ""))
    with files.Staging(final) as staging:
        staging.commit(make_image(staging, fmt, image.size_mb * MiB, fs))
    return source


def make_image(staging: files.Staging, fmt: str, size_bytes: int, fs: str) -> str:
    """Create a raw or qcow2 image in a staging file, formatted with `fs` if given; return its path."""
    temp = staging.temp()
    if not fs:
        qemu.create(temp, fmt, size_bytes)
        return temp
    qemu.create(temp, "raw", size_bytes)
    filesystems.make(temp, fs)
    if fmt == "raw":
        return temp
    converted = staging.temp()
    qemu.convert(temp, converted, "qcow2", src_fmt="raw")
    return converted


def clone(req: DsRequest) -> str:
    """Copy image IMAGE/PATH (another image's SOURCE) into a new image. Prints SOURCE FORMAT."""
    image, ds = req.require_image(), req.datastore
    if not image.path or not os.path.isfile(image.path):
        raise DriverError(f"The image to clone, {image.path or '(none)'}, does not exist")
    detected = qemu.info(image.path)["format"]
    fmt = _target_format(ds, image, detected)
    source, final = _new_image_path(ds)
    log.info(f"Cloning {image.path} into {source} as {fmt}")
    with files.Staging(final) as staging:
        temp = staging.temp()
        qemu.convert(image.path, temp, fmt, src_fmt=detected)
        staging.commit(temp)
    return f"{source} {qemu.reported_format(fmt)}"


def rm(req: DsRequest) -> None:
    """Delete the image and its snapshot files; nothing outside BASE_PATH; already gone is fine."""
    image, ds = req.require_image(), req.datastore
    if not image.source:
        log.info("The image has no SOURCE: nothing to remove")
        return None
    path = _image_source(image, ds)
    removed = [p for p in (path, f"{path}.snap", f"{path}.md5sum") if files.remove_tree(p)]
    log.info(f"Removed {', '.join(removed)}" if removed else f"{image.source} was already gone")
    return None


def monitor(req: DsRequest) -> str:
    """USED_MB, FREE_MB and TOTAL_MB of the volume holding BASE_PATH (one statvfs: constant time)."""
    base = req.datastore.require_base_path()
    mounted = require_mount(base, Volume.from_template(req.datastore.template))
    st = os.statvfs(mounted.mount.mount_point)
    total = st.f_blocks * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    free = st.f_bavail * st.f_frsize
    return f"USED_MB={files.ceil_mb(used)}\nFREE_MB={free // MiB}\nTOTAL_MB={files.ceil_mb(total)}"


def _snapshot_target(image: Image) -> int:
    if image.target_snapshot < 0:
        raise RequestError("The request names no TARGET_SNAPSHOT")
    return image.target_snapshot


def _is_qcow2(image: Image, path: str) -> bool:
    fmt = image.format.lower() or qemu.info(path)["format"]
    return fmt == "qcow2"


def _snapshot_file(path: str, snap_id: int) -> str:
    return os.path.join(f"{path}.snap", str(snap_id))


def snap_delete(req: DsRequest) -> None:
    """Delete image snapshot TARGET_SNAPSHOT; one already gone is fine."""
    image = req.require_image()
    path, snap = _image_source(image, req.datastore), _snapshot_target(image)
    if _is_qcow2(image, path):
        tag = qemu.snapshot_tag(snap)
        if tag in qemu.snapshot_names(path):
            qemu.snapshot(path, "-d", tag)
            log.info(f"Deleted snapshot {snap} of {image.source}")
            return None
    elif files.remove_tree(_snapshot_file(path, snap)):
        log.info(f"Deleted snapshot {snap} of {image.source}")
        return None
    log.info(f"Snapshot {snap} of {image.source} was already gone")
    return None


def snap_revert(req: DsRequest) -> None:
    """Make the image's content that of snapshot TARGET_SNAPSHOT, in place at SOURCE."""
    image = req.require_image()
    path, snap = _image_source(image, req.datastore), _snapshot_target(image)
    if _is_qcow2(image, path):
        tag = qemu.snapshot_tag(snap)
        if tag not in qemu.snapshot_names(path):
            raise DriverError(f"Image {image.source} has no snapshot {snap}")
        qemu.snapshot(path, "-a", tag)
    else:
        snap_file = _snapshot_file(path, snap)
        if not os.path.isfile(snap_file):
            raise DriverError(f"Image {image.source} has no snapshot {snap}")
        with files.Staging(path) as staging:
            temp = staging.temp()
            fd = files.open_new(temp)
            try:
                files.copy_file(snap_file, fd)
            finally:
                os.close(fd)
            staging.commit(temp)
    log.info(f"Reverted {image.source} to snapshot {snap}")
    return None


def snap_flatten(req: DsRequest) -> None:
    """Make snapshot TARGET_SNAPSHOT the image's content and drop every snapshot."""
    image = req.require_image()
    path, snap = _image_source(image, req.datastore), _snapshot_target(image)
    if _is_qcow2(image, path):
        tag = qemu.snapshot_tag(snap)
        if tag not in qemu.snapshot_names(path):
            raise DriverError(f"Image {image.source} has no snapshot {snap}")
        with files.Staging(path) as staging:
            temp = staging.temp()
            qemu.convert(path, temp, "qcow2", src_fmt="qcow2", snapshot=tag)
            staging.commit(temp)
    else:
        snap_file = _snapshot_file(path, snap)
        if not os.path.isfile(snap_file):
            raise DriverError(f"Image {image.source} has no snapshot {snap}")
        os.replace(snap_file, path)
        files.remove_tree(f"{path}.snap")
    log.info(f"Flattened {image.source} on snapshot {snap}")
    return None


def export(req: DsRequest) -> str:
    """IMPORT_INFO for a marketplace: where the image is, its MD5, size in MB and format."""
    image = req.require_image()
    path = _image_source(image, req.datastore)
    data = qemu.info(path)
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(files.CHUNK), b""):
            md5.update(chunk)
    info = etree.Element("IMPORT_INFO")
    for tag, text in (
        ("IMPORT_SOURCE", image.source),
        ("MD5", md5.hexdigest()),
        ("SIZE", str(files.ceil_mb(int(data["virtual-size"])))),
        ("FORMAT", qemu.reported_format(data["format"])),
        ("DISPOSE", "NO"),
    ):
        etree.SubElement(info, tag).text = text
    return etree.tostring(info, encoding="unicode")


ACTIONS: dict[str, Callable[[DsRequest], Optional[str]]] = {
    "cp": cp,
    "stat": stat,
    "mkfs": mkfs,
    "clone": clone,
    "rm": rm,
    "monitor": monitor,
    "snap_delete": snap_delete,
    "snap_revert": snap_revert,
    "snap_flatten": snap_flatten,
    "export": export,
}

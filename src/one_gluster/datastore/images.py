"""DS `cp`, `stat`, `mkfs`, `clone`, `rm`: images coming into, made in, and leaving the datastore."""

from __future__ import annotations

import os

from one_gluster.core import guest_fs, image_sources, log, qemu, sizes, snapshot_store, sparse_copy
from one_gluster.core.ds_request import DS_FILE, IMAGE_CDROM, Datastore, DsRequest, Image
from one_gluster.core.errors import DriverError, RequestError
from one_gluster.core.staging import Staging, remove_tree
from one_gluster.core.volume import refresh
from one_gluster.datastore.image_paths import image_source, new_image_path

MiB = 1 << 20


def _target_format(ds: Datastore, image: Image, detected: str) -> str:
    """The format to store: the datastore's DRIVER where set, as OpenNebula's fs driver decides it:
    not with CONVERT=NO, never for CD-ROMs, file datastores or LUKS images."""
    driver = ds.template.get("DRIVER").lower()
    if (not driver or not ds.template.flag("CONVERT", default=True) or image.type == IMAGE_CDROM
            or ds.type == DS_FILE or detected == "luks"):
        return detected
    if driver not in qemu.TARGET_FORMATS:
        raise DriverError(f"Unknown DRIVER {driver!r} in the datastore template: use raw or qcow2")
    return driver


def cp(req: DsRequest) -> str:
    """Import IMAGE/PATH (file or URL): fetch, unpack, verify, convert, store sparse. Prints SOURCE FORMAT."""
    image, ds = req.require_image(), req.datastore
    if not image.path:
        raise RequestError("The image has no PATH to copy from")
    fetch = image_sources.Fetch.for_datastore(ds)
    source, final = new_image_path(ds)
    expected = image_sources.expected_checksums(image.template)
    hashers = image_sources.hashers_for(expected)
    log.info(f"Copying {image.path} into {source}")
    with Staging(final) as staging:
        temp = staging.temp()
        with sparse_copy.NewFile(temp) as out:
            size = image_sources.fetch_into(image.path, fetch, out, list(hashers.values()))
        # the bricks write the data to disk while `sh` is imported (not during the copy, which it would
        # slow) and qemu-img looks at the file
        staging.flush_ahead(temp)
        image_sources.verify(hashers, expected, image.path)
        detected = qemu.inspect_untrusted(temp)["format"]
        fmt = _target_format(ds, image, detected)
        if fmt != detected:
            log.info(f"Converting {detected} image into {fmt}")
            converted = staging.temp()
            qemu.convert(temp, converted, fmt, src_fmt=detected)
            temp = converted
        elif fmt == "qcow2":
            qemu.pad_to_sector(temp)
        if not ds.template.flag("SPARSE", default=True):
            sparse_copy.allocate(temp)
        staging.commit(temp)
    log.info(f"Imported {size} bytes as {fmt} image {source}")
    return f"{source} {qemu.reported_format(fmt)}"


def stat(req: DsRequest) -> str:
    """Size in MB (rounded up) of the image that `cp` would make from IMAGE/PATH."""
    image, ds = req.require_image(), req.datastore
    if not image.path:
        raise RequestError("The image has no PATH to measure")
    size = image_sources.image_size(image.path, image_sources.Fetch.for_datastore(ds))
    if size is None:
        if image.size_mb:
            return str(image.size_mb)
        raise DriverError(
            f"Cannot tell the size of the raw image at {image.path} without downloading it: "
            "set SIZE in the image template"
        )
    return str(sizes.ceil_mb(size))


def mkfs(req: DsRequest) -> str:
    """A new empty raw or qcow2 image of SIZE MB, with FS made inside when asked. Prints SOURCE."""
    image, ds = req.require_image(), req.datastore
    fmt = (image.format or "raw").lower()
    source, final = new_image_path(ds)
    if fmt == "save_as":
        return source                       # TM cpds fills it in later
    if fmt not in qemu.TARGET_FORMATS:
        raise DriverError(f"Unknown image format {image.format!r}: use raw or qcow2")
    if not image.size_mb or image.size_mb <= 0:
        raise RequestError("A new empty image needs a SIZE in MB")
    fs = guest_fs.check(image.fs) if image.fs else ""
    log.info(f"Creating {image.size_mb} MB {fmt} image {source}" + (f" with {fs}" if fs else ""))
    with Staging(final) as staging:
        staging.commit(guest_fs.make_image(staging, fmt, image.size_mb * MiB, fs))
    return source


def clone(req: DsRequest) -> str:
    """Copy image IMAGE/PATH (another image's SOURCE) into a new image. Prints SOURCE FORMAT."""
    image, ds = req.require_image(), req.datastore
    source, final = new_image_path(ds)               # the mount guard first: a lost volume is said as such
    if not image.path or not os.path.isfile(image.path):
        raise DriverError(f"The image to clone, {image.path or '(none)'}, does not exist")
    refresh(image.path)
    detected = qemu.info(image.path)["format"]
    fmt = _target_format(ds, image, detected)
    log.info(f"Cloning {image.path} into {source} as {fmt}")
    with Staging(final) as staging:
        temp = staging.temp()
        qemu.standalone_copy(image.path, temp, fmt, detected)
        staging.commit(temp)
    return f"{source} {qemu.reported_format(fmt)}"


def rm(req: DsRequest) -> None:
    """Delete the image and its snapshot files; nothing outside BASE_PATH; already gone is fine."""
    image, ds = req.require_image(), req.datastore
    if not image.source:
        log.info("The image has no SOURCE: nothing to remove")
        return None
    path = image_source(image, ds)
    removed = [p for p in (path, snapshot_store.folder(path), f"{path}.md5sum") if remove_tree(p)]
    log.info(f"Removed {', '.join(removed)}" if removed else f"{image.source} was already gone")
    return None

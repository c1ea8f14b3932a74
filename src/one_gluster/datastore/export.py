"""DS `export`: what a marketplace needs to import one of our images."""

from __future__ import annotations

import hashlib

from lxml import etree

from one_gluster.core import qemu, sizes, sparse_copy
from one_gluster.core.ds_request import DsRequest
from one_gluster.datastore.image_paths import image_file


def export(req: DsRequest) -> str:
    """IMPORT_INFO: where the image is, its MD5, size in MB and format."""
    image = req.require_image()
    path = image_file(image, req.datastore)
    data = qemu.info(path)
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(sparse_copy.CHUNK), b""):
            md5.update(chunk)
    info = etree.Element("IMPORT_INFO")
    for tag, text in (
        ("IMPORT_SOURCE", image.source),
        ("MD5", md5.hexdigest()),
        ("SIZE", str(sizes.ceil_mb(int(data["virtual-size"])))),
        ("FORMAT", qemu.reported_format(data["format"])),
        ("DISPOSE", "NO"),
    ):
        etree.SubElement(info, tag).text = text
    return etree.tostring(info, encoding="unicode")

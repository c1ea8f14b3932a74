"""`one-gluster datastore create`: the system and image datastores of a volume, from the templates
in share/datastores, through pyone: an image datastore whose disks KVM opens through libgfapi
(DISK_TYPE=GLUSTER), or as files through each host's FUSE mount (DISK_TYPE=FILE)."""

from __future__ import annotations

import os
from typing import NamedTuple

from one_gluster.admin.oned_conf import parse
from one_gluster.core.errors import DriverError

IMAGE_TEMPLATES = {"GLUSTER": "gluster-images.ds", "FILE": "gluster-images-file.ds"}   # by DISK_TYPE


class Created(NamedTuple):
    id: int
    name: str
    type: str


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(template: str, values: dict[str, str]) -> str:
    """`template` with the top-level attributes in `values` set (replaced in place, else appended)."""
    edits, missing = [], dict(values)
    for assignment in parse(template):
        if assignment.name in missing and assignment.value is not None:
            value = assignment.value
            quoted = template[value.start - 1:value.start] == '"'
            start, end = (value.start - 1, value.end + 1) if quoted else (value.start, value.end)
            edits.append((start, end, _quote(missing.pop(assignment.name))))
    for start, end, text in sorted(edits, reverse=True):
        template = template[:start] + text + template[end:]
    return template + "".join(f"{key} = {_quote(value)}\n" for key, value in missing.items())


def templates(directory: str, volume: str, hosts: str, prefix: str,
              disk_type: str = "GLUSTER") -> list[tuple[str, str]]:
    """(kind, template text) of the system and the image datastore for `volume`, whose disks are of
    `disk_type`."""
    found = []
    for kind, name in (("system", "gluster-system.ds"), ("images", IMAGE_TEMPLATES[disk_type])):
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise DriverError(f"Cannot read the datastore template {path}: {exc.strerror}") from None
        found.append((kind, render(text, {"NAME": f"{prefix}_{kind}", "GLUSTER_HOST": hosts,
                                          "GLUSTER_VOLUME": volume})))
    return found


def create(texts: list[tuple[str, str]], cluster: int) -> list[Created]:
    from one_gluster.core.opennebula import client

    created = []
    for kind, text in texts:
        name = next(a.value.text for a in parse(text) if a.name == "NAME" and a.value)
        created.append(Created(client().allocate_datastore(text, cluster), name, kind))
    return created

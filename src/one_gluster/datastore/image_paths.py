"""Where a datastore's images live: BASE_PATH on a proven gluster mount, and each image's SOURCE."""

from __future__ import annotations

import os

from one_gluster.core import log, staging
from one_gluster.core.ds_request import Datastore, Image
from one_gluster.core.errors import DriverError, RequestError
from one_gluster.core.volume import MountedPath, Volume, refresh, require_mount


def _mounted_base(ds: Datastore) -> tuple[str, MountedPath]:
    """BASE_PATH as oned gave it, and its place on a proven live mount of GLUSTER_VOLUME."""
    base = ds.require_base_path()
    return base, require_mount(base, Volume.from_template(ds.template))


def new_image_path(ds: Datastore) -> tuple[str, str]:
    """(SOURCE as OpenNebula will store it, the real path to write) for a new image. Staging files left
    behind in the datastore by failed actions go first, once a day old (`staging.remove_stale_staging`)."""
    base, mounted = _mounted_base(ds)
    os.makedirs(mounted.path, exist_ok=True)          # a new datastore's directory appears on first use
    for path in staging.remove_stale_staging(mounted.path):
        log.info(f"Removed {path}, left behind by an action that failed with the volume")
    name = staging.unique_name(mounted.path)
    return f"{base.rstrip('/')}/{name}", os.path.join(mounted.path, name)


def image_source(image: Image, ds: Datastore) -> str:
    """SOURCE of an existing image, refused unless it is a direct child of BASE_PATH."""
    if not image.source:
        raise RequestError("The image has no SOURCE")
    _, mounted = _mounted_base(ds)
    real_dir = os.path.realpath(os.path.dirname(image.source))
    name = os.path.basename(image.source)
    if real_dir != mounted.path or name in ("", ".", ".."):
        raise DriverError(f"Image source {image.source} is not inside the datastore directory {ds.base_path}")
    return os.path.join(real_dir, name)


def image_file(image: Image, ds: Datastore) -> str:
    """The file of an existing image, refused if missing, as the bricks hold it now: the last VM that
    used it may have written it through libgfapi moments ago (`volume.refresh`)."""
    path = image_source(image, ds)
    if not os.path.isfile(path):
        raise DriverError(f"The image file {image.source} does not exist")
    refresh(path)
    return path

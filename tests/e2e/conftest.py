"""End-to-end fixtures: the test volumes a VM's whole life runs on."""

from __future__ import annotations

from pathlib import Path

import pytest

from one_gluster.admin import lab as labmod
from support.drivers import ImageDatastore, TransferManager
from support.labs import SITES


@pytest.fixture(scope="module")
def site(request) -> tuple[labmod.Lab, ImageDatastore, TransferManager, Path]:
    """(lab, image datastore, TM, where sources go) of the site `request.param` names in SITES: the volume
    as created, the replica-3 one tuned with gluster's virt group (sharded), or the one owned by oneadmin.
    A test names its sites with `@pytest.mark.parametrize("site", [...], indirect=True)`."""
    lab, ds, tm, sources = (request.getfixturevalue(name) for name in SITES[request.param])
    return lab, ds, tm, getattr(sources, "sources", sources)

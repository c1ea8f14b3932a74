"""SAFE_DIRS / RESTRICTED_DIRS exactly as OpenNebula's libfs.sh applies them."""

from __future__ import annotations

import os

import pytest

from one_gluster.core.ds_request import Template
from one_gluster.core.errors import DriverError
from one_gluster.core.image_sources import PathRules, check_path


def rules(safe="", restricted="", **env):
    return PathRules.from_template(Template({"SAFE_DIRS": safe, "RESTRICTED_DIRS": restricted}),
                                   {"HOME": "/var/lib/one", **env})


def test_defaults_written_by_core():
    r = rules("/var/tmp", "/")
    assert r.allows("/var/tmp/images/base.qcow2")
    assert not r.allows("/home/user/disk.img") and not r.allows("/etc/passwd")


def test_builtin_restrictions_always_apply():
    r = rules()
    assert not r.allows("/var/lib/one/datastores/1/abc")
    assert not r.allows("/etc/one/oned.conf")
    assert r.allows("/srv/images/disk.img")


def test_one_location_moves_the_builtins():
    r = rules(ONE_LOCATION="/opt/one")
    assert not r.allows("/opt/one/var/x") and not r.allows("/opt/one/etc/x")
    assert r.allows("/etc/one/oned.conf")


def test_safe_dirs_win_over_restricted():
    assert rules("/var/lib/one/import", "/").allows("/var/lib/one/import/disk.img")


def test_plain_prefix_like_grep():
    # OpenNebula compares with `grep "^$dir"`: a prefix of the string, not of path components.
    assert rules("/var/tmp", "/").allows("/var/tmpfoo/disk.img")
    assert not rules("/var/tmp/", "/").allows("/var/tmpfoo/disk.img")


def test_checked_on_resolved_path(tmp_path):
    safe = tmp_path / "safe"
    safe.mkdir()
    (safe / "link").symlink_to("/etc/hostname")
    (safe / "real").write_bytes(b"x")
    r = rules(f"{safe}/", "/")
    assert check_path(str(safe / "real"), r) == str(safe / "real")
    with pytest.raises(DriverError, match="Not allowed to copy image from"):
        check_path(str(safe / "link"), r)
    with pytest.raises(DriverError, match="Not allowed"):
        check_path(f"{safe}/../../../etc/hostname", r)
    with pytest.raises(DriverError, match="is not a regular file"):
        os.mkdir(safe / "dir")
        check_path(str(safe / "dir"), r)

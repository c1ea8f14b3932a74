"""The TM monitor's listings kept between runs: trusted only for an unchanged, settled directory of
the same datastore; a cache that cannot be read or written is no error."""

from __future__ import annotations

import os
import time

from one_gluster.tm.vm_listings import RACY, VmListings, cache_path, key_of

OLD = time.time_ns() - int(60e9)


def test_an_unchanged_directory_is_served_from_the_last_run(tmp_path):
    path, names = str(tmp_path / "monitor-100.json"), {"disk.0": None, "disk.1": "../../101/abc"}
    first = VmListings(path, "/ds/100")
    assert first.get("7", (5, OLD, OLD)) is None
    first.put("7", (5, OLD, OLD), names)
    first.save()
    second = VmListings(path, "/ds/100")
    assert second.get("7", (5, OLD, OLD)) == names
    assert second.get("7", (5, OLD + 1, OLD + 1)) is None                # changed since: listed again
    assert VmListings(path, "/ds/200").get("7", (5, OLD, OLD)) is None   # another datastore's
    second.save()                                                        # kept what it used
    assert VmListings(path, "/ds/100").get("7", (5, OLD, OLD)) == names


def test_a_directory_changed_within_racy_seconds_is_not_kept(tmp_path):
    path = str(tmp_path / "monitor-100.json")
    listings = VmListings(path, "/ds/100")
    recent = time.time_ns() - int((RACY - 1) * 1e9)
    listings.put("7", (5, recent, recent), {"disk.0": None})
    listings.put("8", (6, OLD, recent), {"disk.0": None})                # its ctime is recent
    listings.save()
    assert VmListings(path, "/ds/100").get("7", (5, recent, recent)) is None
    assert VmListings(path, "/ds/100").get("8", (6, OLD, recent)) is None


def test_a_directory_not_seen_this_run_is_forgotten(tmp_path):
    path = str(tmp_path / "monitor-100.json")
    first = VmListings(path, "/ds/100")
    first.put("7", (5, OLD, OLD), {"disk.0": None})
    first.save()
    VmListings(path, "/ds/100").save()                                   # VM 7 gone
    assert VmListings(path, "/ds/100").get("7", (5, OLD, OLD)) is None


def test_a_broken_or_unwritable_cache_is_ignored(tmp_path):
    path = tmp_path / "monitor-100.json"
    path.write_text('{"version": 1, "base": "/ds/100", "vms": {"7": [[5], 3]}')
    assert VmListings(str(path), "/ds/100").get("7", (5, OLD, OLD)) is None
    path.write_text('{"version": 1, "base": "/ds/100", "vms": {"7": [[5, 1, 1], 3]}}')
    assert VmListings(str(path), "/ds/100").get("7", (5, 1, 1)) is None
    path.write_text('{"version": 1, "base": "/ds/100", "vms": {"7": [[5, 1, 1], {"disk.0": 3}]}}')
    assert VmListings(str(path), "/ds/100").get("7", (5, 1, 1)) is None
    blocked = tmp_path / "file"
    blocked.write_text("")
    listings = VmListings(str(blocked / "monitor-100.json"), "/ds/100")  # its directory is a file
    listings.put("7", (5, OLD, OLD), {"disk.0": None})
    listings.save()
    assert sorted(os.listdir(tmp_path)) == ["file", "monitor-100.json"]


def test_the_cache_is_the_users_own(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_path(100) == f"{tmp_path}/one-gluster/monitor-100.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "/var/lib/one")
    assert cache_path(100) == "/var/lib/one/.cache/one-gluster/monitor-100.json"
    assert key_of(os.stat(tmp_path))[0] == os.stat(tmp_path).st_ino

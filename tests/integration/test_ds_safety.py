"""The mount guard, the error contract, oned's argv forms, a kill mid-copy, and libgfapi opens."""

from __future__ import annotations

import base64
import http.server
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import onedsim
from one_gluster.admin import lab as labmod
from one_gluster.core import gluster, processes
from support.drivers import ImageDatastore
from support.images import gfapi_differences, make_raw, qemu_img
from support.labs import HOST, VOLUME

MiB = 1 << 20


@pytest.fixture(scope="module")
def other(tmp_path_factory, glusterd):
    """A second volume, to show the guard telling volumes apart and a dead mount being refused."""
    root = tmp_path_factory.mktemp("other")
    volume = labmod.Lab(root=str(root), volume="ogother", host=HOST)
    volume.up()
    yield volume
    volume.down()


def src_image(sources_dir) -> Path:
    return make_raw(sources_dir / "guard.raw", 8 * MiB, {0: os.urandom(MiB)})


def refused_everywhere(ds: ImageDatastore, sources_dir, text: str) -> None:
    image = onedsim.image(0, path=str(src_image(sources_dir)))
    for action, img, oid in (("cp", image, 0), ("mkfs", onedsim.image(1, fmt="raw", size_mb=8), 1),
                             ("monitor", None, 101)):
        result = ds.call(action, img, object_id=oid)
        assert result.returncode != 0, action
        assert len(result.plain_errors) == 1 and text in result.plain_errors[0], (action, result.stderr)


def test_guard_refuses_plain_directory(remotes, ds, tmp_path, sources_dir):
    plain = ImageDatastore(remotes, str(tmp_path / "datastores" / "101"), ds.template)
    refused_everywhere(plain, sources_dir, "is not on a GlusterFS mount")
    assert not (tmp_path / "datastores").exists() or not any((tmp_path / "datastores").rglob("*"))


def test_guard_refuses_another_volume(remotes, ds, other, sources_dir):
    wrong = ImageDatastore(remotes, other.mount_point, ds.template)      # GLUSTER_VOLUME says ogtest
    before = set(os.listdir(other.mount_point))
    refused_everywhere(wrong, sources_dir, "is on a mount of gluster volume 'ogother'")
    assert set(os.listdir(other.mount_point)) == before


def test_guard_refuses_dead_mount_and_lab_recovers_it(remotes, ds, other, sources_dir):
    dead = ImageDatastore(remotes, other.mount_point, {**ds.template, "GLUSTER_VOLUME": "ogother"})
    dead.ok("monitor", None, object_id=101)
    os.kill(processes.fuse_client_of(other.mount_point), signal.SIGKILL)
    time.sleep(0.5)
    assert other.mount_state() == "dead"
    refused_everywhere(dead, sources_dir, "is dead")
    other.up()                                                           # idempotent: remounts
    assert other.mount_state() == "mounted"
    dead.ok("monitor", None, object_id=101)


def test_missing_required_attributes(ds, sources_dir):
    image = onedsim.image(0, path=str(src_image(sources_dir)))
    for template, text in (({"GLUSTER_VOLUME": ""}, "GLUSTER_VOLUME is not set"),
                           ({"GLUSTER_VOLUME": "bad vol!"}, "not a valid gluster volume name")):
        result = ds.call("cp", image, ds_template=template)
        assert result.returncode != 0 and result.plain_errors == [result.plain_errors[0]]
        assert text in result.plain_errors[0]
    payload = onedsim.request(onedsim.datastore(101, "", ds.template), image)
    done = onedsim.call(str(ds.remotes / "datastore/gluster/cp"), 0, payload)
    assert done.returncode != 0 and b"no BASE_PATH" in done.stderr


@pytest.mark.parametrize("payload,text", [
    (b"%%% not base64 %%%", "not valid base64"),
    (base64.b64encode(b"<DS_DRIVER_ACTION_DATA><IMAGE>"), "Malformed XML"),
    (base64.b64encode(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><DS_DRIVER_ACTION_DATA>&e;'
                      b"</DS_DRIVER_ACTION_DATA>"), "DOCTYPE"),
    (base64.b64encode(b"<VM/>"), "expected <DS_DRIVER_ACTION_DATA>"),
    (b"", "Empty request"),
])
def test_malformed_requests(ds, payload, text):
    done = onedsim.call(str(ds.remotes / "datastore/gluster/cp"), 0, payload)
    lines = done.stderr.decode().splitlines()
    assert done.returncode != 0 and done.stdout == b""
    assert len(lines) == 1 and text in lines[0] and "Traceback" not in lines[0]


def test_older_argv_forms(ds):
    payload = onedsim.request(ds.node())
    monitor = str(ds.remotes / "datastore/gluster/monitor")
    new = subprocess.run([monitor, "101"], input=payload, capture_output=True)
    old = subprocess.run([monitor, payload.decode(), "101"], capture_output=True, stdin=subprocess.DEVNULL)
    dash = subprocess.run([monitor, "-", "101"], input=payload, capture_output=True)
    for done in (new, old, dash):
        assert done.returncode == 0 and done.stdout.startswith(b"USED_MB=")
    none = subprocess.run([monitor], capture_output=True, stdin=subprocess.DEVNULL)
    assert none.returncode != 0 and b"Missing arguments" in none.stderr


def test_term_mid_copy_leaves_nothing(ds):
    """oned's timeout sends TERM: the staged file goes, no SOURCE appears."""
    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(64 * MiB))
            self.end_headers()
            try:
                for _ in range(64):
                    self.wfile.write(os.urandom(MiB))
                    time.sleep(0.2)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        before = ds.entries()
        payload = onedsim.request(ds.node(), onedsim.image(0, path=f"http://127.0.0.1:{server.server_address[1]}/big"))
        proc = subprocess.Popen([str(ds.remotes / "datastore/gluster/cp"), "0"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdin.write(payload)
        proc.stdin.close()
        deadline = time.monotonic() + 10
        while ds.entries() == before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any(name.startswith(".") for name in ds.entries() - before), "the copy never started"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) != 0
        assert proc.stdout.read() == b""
        assert ds.entries() == before
    finally:
        server.shutdown()


def test_import_removes_staging_files_left_a_day_ago(ds, sources_dir):
    """What an action that failed with its volume could not remove (test_virt_volume: quorum lost): the
    next import into the datastore removes it once nothing has written it for a day, and leaves younger
    ones (an action at work) and every other file alone."""
    name = "0123456789abcdef0123456789abcdef"
    old, young = ds.directory / f".{name}.0badf00d.part", ds.directory / f".{name}.0c0ffee0.part"
    for path in (old, young):
        path.write_bytes(b"half an image")
    os.utime(old, (time.time() - 2 * 24 * 3600,) * 2)
    before = ds.entries()
    done = ds.call("cp", onedsim.image(0, path=str(src_image(sources_dir))))
    assert done.returncode == 0, done.stderr
    assert f"INFO: cp: Removed {old}, left behind by an action that failed with the volume\n" in done.stderr
    source = done.stdout.split()[0]
    assert ds.entries() == (before - {old.name}) | {os.path.basename(source)}
    young.unlink()
    ds.ok("rm", onedsim.image(0, source=source))


@pytest.mark.gfapi
def test_images_open_through_libgfapi(ds, sources_dir, lab):
    """What KVM sees: each kind of image the DS writes, opened at the name core gives it."""
    raw = make_raw(sources_dir / "gfapi.raw", 16 * MiB, {0: os.urandom(MiB), 15 * MiB: os.urandom(MiB)})
    qcow = sources_dir / "gfapi.qcow2"
    qemu_img("convert", "-O", "qcow2", str(raw), str(qcow))
    imported = Path(ds.ok("cp", onedsim.image(0, path=str(qcow))).split()[0])
    converted = Path(ds.ok("cp", onedsim.image(0, path=str(raw)), ds_template={"DRIVER": "qcow2"}).split()[0])
    made = Path(ds.ok("mkfs", onedsim.image(1, fmt="qcow2", fs="ext4", size_mb=64)).strip())
    snapped = Path(ds.ok("cp", onedsim.image(0, path=str(qcow))).split()[0])
    qemu_img("snapshot", "-c", "one-snap-0", str(snapped))
    ds.ok("snap_flatten", onedsim.image(4, source=str(snapped), fmt="qcow2", target_snapshot=0, snapshot_ids=(0,)))
    images = [imported, converted, made, snapped]
    # core: GLUSTER_VOLUME/<basename of SOURCE>
    assert gfapi_differences([(f"gluster://{HOST}/{VOLUME}/{p.name}", p, "qcow2") for p in images]) == []


def test_lab_replica3(tmp_path, glusterd):
    replica = labmod.Lab(root=str(tmp_path), volume="ogrep3", host=HOST, replica=3)
    try:
        replica.up()
        replica.up()                                   # idempotent
        info = gluster.volume_info("ogrep3")
        assert info.type == "Replicate" and info.replica_count == 3 and len(info.bricks) == 3
        assert all(b.online for b in gluster.brick_status("ogrep3"))
        (Path(replica.mount_point) / "f").write_bytes(b"replicated")
        assert all((Path(b) / "f").read_bytes() == b"replicated" for b in replica.bricks)
    finally:
        replica.down()
    assert gluster.volume_info("ogrep3") is None and replica.mount_state() == "absent"

"""TM refusals: layouts where core would open another file than the driver makes, unmounted system
datastores, an unreachable oned, a ONE_XMLRPC that is not oned's API, a VM document oned would not
send, malformed arguments, paths of another VM. Each fails with one plain line and writes nothing.
A clone that oned's timeout stops leaves nothing either."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from lxml import etree

import onedsim
from support.drivers import deploy, gluster_disk, imported
from support.images import make_raw
from support.labs import VOLUME
from support.net import serve

MiB = 1 << 20


@pytest.fixture(scope="module")
def qcow2_source_for_safety(ds, sources_dir):
    return imported(ds, sources_dir, "tm-safety", "qcow2")[0]


def test_image_datastore_in_another_directory_of_the_volume_is_refused(tm, ds, lab, sources_dir, vm_ids):
    # datastore 102: a subdirectory of the volume, not the directory the VM directories are in
    sub = Path(lab.mount_point) / "images102"
    sub.mkdir(exist_ok=True)
    link = Path(lab.mount_point).parent / "102"
    if not link.exists():
        link.symlink_to(sub)
    raw = make_raw(sources_dir / "elsewhere.raw", 8 * MiB, {0: b"x" * 4096})
    source, _ = ds.ok("cp", onedsim.image(0, path=str(raw)), ds_template={}).split()
    moved = str(link) + "/" + os.path.basename(source)
    os.rename(os.path.realpath(source), os.path.realpath(link) + "/" + os.path.basename(source))
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, moved, "raw", clone=False, datastore_id=102))
    done = tm.call("ln", f"vm:{moved}", tm.disk(vmid, 0), vmid, 102)
    assert done.returncode == 1
    error = done.plain_errors[-1]
    assert f"KVM will open gluster volume path {VOLUME}/{os.path.basename(source)}" in error
    assert f"{VOLUME}/images102/{os.path.basename(source)}" in error and "same directory of the volume" in error
    assert not tm.real(vmid, 0).exists()


def test_unmounted_system_datastore_is_refused(tm, qcow2_source_for_safety, tmp_path, vm_ids):
    source = qcow2_source_for_safety
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "qcow2"))
    plain = tmp_path / "datastores" / "100"
    plain.mkdir(parents=True)
    done = tm.call("clone", f"vm:{source}", f"{tm.host}:{plain}/{vmid}/disk.0", vmid, 101)
    assert done.returncode == 1 and "is not on a GlusterFS mount" in done.plain_errors[-1]
    assert os.listdir(plain) == []
    done = tm.call("mkswap", 16, f"{tm.host}:{plain}/{vmid}/disk.1", vmid, 100)
    assert done.returncode == 1 and os.listdir(plain) == []
    done = tm.call("delete", f"{tm.host}:{plain}/{vmid}", vmid, 100)
    assert done.returncode == 1 and "is not on a GlusterFS mount" in done.plain_errors[-1]


def test_system_datastore_of_another_volume_is_refused(tm, vm_ids):
    vmid = next(vm_ids)
    other = onedsim.datastore(105, f"{tm.location}/105", {"GLUSTER_HOST": "127.0.1.1", "GLUSTER_VOLUME": "othervol",
                                                          "TYPE": "SYSTEM_DS"}, ds_type=1)
    tm.api.datastores[105] = other
    done = tm.call("mkswap", 16, tm.disk(vmid, 1), vmid, 105)
    assert done.returncode == 1 and "not of GLUSTER_VOLUME 'othervol'" in done.plain_errors[-1]
    assert not tm.real(vmid, 1).exists()


def test_unreachable_oned_is_a_clear_error(tm, qcow2_source_for_safety, vm_ids):
    source = qcow2_source_for_safety
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                  # a port nobody listens on
    vmid = next(vm_ids)
    done = tm.call("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101,
                   env={"ONE_XMLRPC": f"http://127.0.0.1:{port}/RPC2"})
    assert done.returncode == 1
    assert done.plain_errors == [f"Cannot reach OpenNebula at http://127.0.0.1:{port}/RPC2: Connection refused"]
    assert "Traceback" not in done.stderr and not tm.real(vmid, 0).exists()
    for url in ("localhost:2633", "http://[::1", f"http://127.0.0.1:{port}0000/RPC2"):   # pyone: gRPC, crash
        done = tm.call("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101, env={"ONE_XMLRPC": url})
        assert done.returncode == 1 and done.plain_errors == [
            f"ONE_XMLRPC is not the http(s) URL of OpenNebula's XML-RPC API: {url!r} (the default is "
            "http://localhost:2633/RPC2)"], done.stderr


class WebPage(http.server.BaseHTTPRequestHandler):
    """A web page where oned's API should be (ONE_XMLRPC naming a proxy or the web UI)."""

    def do_POST(self) -> None:
        body = b"<html><body>Sign in</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_endpoint_that_is_not_opennebula_is_a_clear_error(tm, qcow2_source_for_safety, tmp_path, vm_ids):
    source = qcow2_source_for_safety
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "qcow2"))
    files = serve(tmp_path)                 # a plain web server: it answers oned's POST with HTTP 501
    page = serve(None, handler=WebPage)
    try:
        for server, error in ((files, "OpenNebula's XML-RPC API is not at {}: that server answers HTTP 501 "
                                      "(check ONE_XMLRPC)"),
                              (page, "The server at {} does not answer in XML-RPC: it is not OpenNebula's API "
                                     "(check ONE_XMLRPC)")):
            url = f"http://127.0.0.1:{server.server_address[1]}/RPC2"
            done = tm.call("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101, env={"ONE_XMLRPC": url})
            assert done.returncode == 1
            assert done.plain_errors == [error.format(url)], done.stderr
            assert "Internal error" not in done.stderr and not tm.real(vmid, 0).exists()
    finally:
        for server in (files, page):
            server.shutdown()
            server.server_close()


def test_vm_document_not_in_oned_format_is_a_clear_error(tm, qcow2_source_for_safety, vm_ids):
    source = qcow2_source_for_safety
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "qcow2"))
    for tag, value in (("LCM_STATE", "RUNNING"), ("ID", "")):
        tm.api.vms[vmid].find(tag).text = value
        done = tm.call("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
        assert done.returncode == 1
        assert done.plain_errors[0].startswith(f"OpenNebula at {tm.api.endpoint} answered with a document for "
                                               f"VM {vmid} that this driver cannot read ("), done.stderr
        assert "Internal error" not in done.stderr and not tm.real(vmid, 0).exists()
        deploy(tm, vmid, gluster_disk(0, source, "qcow2"))


def test_wrong_credentials_and_unknown_vm(tm, qcow2_source_for_safety, tmp_path, vm_ids):
    source = qcow2_source_for_safety
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "qcow2"))
    bad = tmp_path / "one_auth"
    bad.write_text("oneadmin:wrong\n")
    done = tm.call("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101, env={"ONE_AUTH": str(bad)})
    assert done.returncode == 1 and "refused to show VM" in done.plain_errors[-1]
    done = tm.call("clone", f"vm:{source}", tm.disk(9999, 0), 9999, 101)
    assert done.returncode == 1 and done.plain_errors == ["VM 9999 does not exist in OpenNebula"]


def test_malformed_arguments(tm):
    assert tm.call("clone", "only-one").plain_errors[-1].startswith("Expected the arguments")
    done = tm.call("delete", f"{tm.host}:relative/path", 1, 100)
    assert done.returncode == 1 and "absolute path" in done.plain_errors[-1]
    disk = f"{tm.host}:{tm.location}/100/1/disk.0"
    for size in ("big", "١٠", "1_000", " 5"):       # the last three int() takes, but oned never writes
        done = tm.call("resize", disk, size, 1, 101)
        assert done.returncode == 1 and done.plain_errors == [f"The size argument is not a number: {size!r}"]
    done = tm.call("resize", disk, 10, "99999999999", 101)
    assert done.plain_errors == ["The VM id argument is out of range: 99999999999 (at most 2147483647)"]
    done = tm.call("mkswap", 2**44, f"{tm.host}:{tm.location}/100/1/disk.1", 1, 100)
    assert done.plain_errors == [f"The size argument is out of range: {2**44} (at most {2**43 - 1})"]


@pytest.mark.parametrize("driver, disk", [("raw", {}), ("qcow2", {"QCOW2_STANDALONE": "YES"})],
                         ids=["raw copy", "qemu-img convert"])
def test_term_mid_clone_leaves_nothing(tm, ds, vm_ids, driver, disk):
    """oned's timeout sends TERM to the action's process group (qemu-img included): the staged disk goes."""
    image = ds.directory / f"term-{driver}.raw"
    make_raw(image, 512 * MiB, {0: b"\x5a" * (384 * MiB)})   # seconds of copying on this volume
    source = f"{ds.base_path}/{image.name}"
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "raw", size_mb=512, driver=driver, extra=disk))
    proc = subprocess.Popen([str(tm.remotes / "tm/gluster/clone"), f"vm:{source}", tm.disk(vmid, 0), str(vmid),
                             "101"], env=tm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        def staged() -> bool:
            return tm.real(vmid).is_dir() and any(name.startswith(".disk.0.") for name in os.listdir(tm.real(vmid)))

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None and not staged():
            time.sleep(0.01)
        assert proc.poll() is None and staged(), "the copy never started"
        time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) != 0
        assert proc.stdout.read() == b"" and b"Traceback" not in proc.stderr.read()
        assert os.listdir(tm.real(vmid)) == []                 # no disk.0, no staging file
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        image.unlink()


def test_paths_of_another_vm_are_refused(tm, qcow2_source_for_safety, sources_dir, vm_ids):
    """Every action that writes, reads or removes a disk takes only a path in the directory of the VM it
    is given, and writes a saved image only into the image datastore: never another VM's disk (a context
    ISO or a save-as once replaced one) or directory."""
    source = qcow2_source_for_safety
    mine, theirs = next(vm_ids), next(vm_ids)
    for vmid in (mine, theirs):
        deploy(tm, vmid, gluster_disk(0, source, "qcow2"), onedsim.volatile_disk(1, kind="swap", size_mb=8),
               lcm_state=51)
        tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    tm.ok("mkswap", 8, tm.disk(theirs, 1), theirs, 100)
    theirs_before = {name: (tm.real(theirs) / name).read_bytes() for name in ("disk.0", "disk.1")}
    context_sh = sources_dir / "context-refused.sh"
    context_sh.write_text("ETH0_IP='10.0.0.9'\n")
    other, other_dir = tm.disk(theirs, 0), f"{tm.host}:{tm.location}100/{theirs}"
    calls = {"clone": (f"vm:{source}", other, mine, 101), "ln": (f"vm:{source}", other, mine, 101),
             "mkimage": (8, "raw", tm.disk(theirs, 1), mine, 100), "mkswap": (8, tm.disk(theirs, 1), mine, 100),
             "context": (context_sh, tm.disk(theirs, 1), mine, 100), "resize": (other, 64, mine, 101),
             "snap_create": (other, 0, mine, 101), "snap_revert": (other, 0, mine, 101),
             "snap_delete": (other, 0, mine, 101), "cpds": (other, f"{tm.location}100/{'5e' * 16}", -1, mine, 101),
             "delete": (other, mine, 101), "clone.ssh": (f"vm:{source}", other, mine, 101),
             "delete.ssh": (other, mine, 101), "mv": (other_dir, f"{tm.host}:{tm.location}100/{mine}", mine, 100)}
    for action, args in calls.items():
        done = tm.call(action, *args)
        path = next(str(a).split(":", 1)[1] for a in args if f"/{theirs}" in str(a)).replace("//", "/")
        kind = "the directory" if path.endswith(f"/{theirs}") else "a file"
        assert done.returncode == 1 and done.plain_errors[0].startswith(
            f"Refusing {path}: it is not {kind} of VM {mine} "), (action, done.stderr)
    their_disk = f"{tm.location}100/{theirs}/disk.0".replace("//", "/")       # as a new image or SOURCE
    for action, args in (("cpds", (tm.disk(mine, 0), their_disk, -1, mine, 101)),
                         ("cpds.ssh", (tm.disk(mine, 0), their_disk, -1, mine, 101)),
                         ("mvds.ssh", (tm.disk(mine, 0), their_disk, mine, 101))):
        done = tm.call(action, *args)
        assert done.returncode == 1 and done.plain_errors == [
            f"Refusing {their_disk}: it is not an image of datastore 101 (.../101/<name>)"], (action, done.stderr)
    doc = etree.tostring(tm.api.vms[mine])
    done = tm.call("prebackup", other_dir, "0", f"one-{mine}", "-", mine, 100, stdin=doc)
    assert done.returncode == 1 and done.plain_errors[0].startswith(f"Refusing {other_dir.split(':', 1)[1]}")
    assert {name: (tm.real(theirs) / name).read_bytes() for name in ("disk.0", "disk.1")} == theirs_before
    assert sorted(os.listdir(tm.real(theirs))) == ["disk.0", "disk.1"]
    assert not os.path.exists(f"{tm.location}100/{'5e' * 16}")

"""TM monitor of the system datastore (capacity on stdout, per-VM disk sizes to a UDP listener
standing in for monitord) and the migrate actions (stdin: the base64 VM document)."""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import zlib

import pytest
from lxml import etree

import onedsim
from support.drivers import deploy, gluster_disk, imported

MiB = 1 << 20


@pytest.fixture(scope="module")
def source(ds, sources_dir):
    return imported(ds, sources_dir, "mon", "raw")[0]


@pytest.fixture
def monitord(tmp_path):
    """A UDP socket where monitord would listen, and ONE_LOCATION/etc/monitord.conf naming it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    (tmp_path / "etc").mkdir()
    conf = tmp_path / "etc" / "monitord.conf"
    conf.write_text('NETWORK = [\n    ADDRESS = "0.0.0.0",\n    MONITOR_ADDRESS = "auto",\n'
                    f'    PORT    = {sock.getsockname()[1]},\n    THREADS = 8,\n    PUBKEY  = "",\n'
                    '    PRIKEY  = ""\n]\n')
    yield sock, tmp_path, conf
    sock.close()


def system_request(tm, monitor_vm_disks: int) -> bytes:
    node = onedsim.datastore(100, f"{tm.location}/100", {"SHARED": "YES", "TYPE": "SYSTEM_DS"}, name="gsys",
                             ds_type=1)
    return onedsim.request(node, extra={"DATASTORE_LOCATION": tm.location.rstrip("/"),
                                        "MONITOR_VM_DISKS": str(monitor_vm_disks)})


def decode(datagram: bytes) -> tuple[list[str], str]:
    """send_to_monitor's message: header fields and the payload (base64, zlib, one newline each)."""
    assert datagram.endswith(b"\n") and datagram.count(b"\n") == 1
    fields = datagram.decode()[:-1].split(" ")
    packed = base64.b64decode(fields[4], validate=True)
    assert packed.endswith(b"\n")
    return fields[:4], zlib.decompress(packed[:-1]).decode()


def test_monitor_reports_capacity_and_sends_vm_disk_sizes(tm, source, monitord, vm_ids):
    sock, one_location, _ = monitord
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "raw"))
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    tm.ok("mkswap", 16, tm.disk(vmid, 1), vmid, 100)
    tm.ok("snap_create", tm.disk(vmid, 0), 0, vmid, 101)
    done = tm.ok("monitor", 100, stdin=system_request(tm, 1), env={"ONE_LOCATION": str(one_location)})
    lines = done.stdout.split("\n")
    df = subprocess.run(["df", "-B1M", "-P", tm.location + "100"], capture_output=True, text=True).stdout
    total = df.splitlines()[1].split()[1]
    assert lines[0].startswith("USED_MB=") and lines[1].startswith("FREE_MB=") and lines[2] == f"TOTAL_MB={total}"
    header, payload = decode(sock.recv(65536))
    assert header == ["MONITOR_VM", "SUCCESS", "-1", "0"]
    assert payload.endswith("\n") and "\n" not in payload[:-1]
    reports = dict(re.findall(r'VM=\[ID=(\d+), MONITOR="([^"]+)"\]', payload))
    mine = base64.b64decode(reports[str(vmid)]).decode()
    du = lambda path: -(-os.stat(path).st_blocks * 512 // MiB)          # du -mL: space used, rounded up
    assert du(tm.real(vmid, 0)) >= 2
    assert mine == (f"DISK_SIZE = [ ID=0, SIZE={du(tm.real(vmid, 0))}] "
                    f"SNAPSHOT_SIZE = [ ID=0, DISK_ID=0, SIZE={du(f'{tm.real(vmid, 0)}.snap/0')}] "
                    f"DISK_SIZE = [ ID=1, SIZE={du(tm.real(vmid, 1))}]\n")


def test_monitor_without_vm_disks_sends_nothing(tm, monitord):
    sock, one_location, _ = monitord
    tm.ok("monitor", 100, stdin=system_request(tm, 0), env={"ONE_LOCATION": str(one_location)})
    sock.settimeout(0.5)
    with pytest.raises(socket.timeout):
        sock.recv(65536)


def test_monitor_encrypts_for_a_keyed_monitord(tm, source, monitord, vm_ids):
    sock, one_location, conf = monitord
    key, pub = one_location / "monitord.key", one_location / "monitord.pub"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "1024"], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", str(key), "-RSAPublicKey_out", "-out", str(pub)], check=True,
                   capture_output=True)
    conf.write_text(conf.read_text().replace('PUBKEY  = ""', f'PUBKEY  = "{pub}"'))
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "raw"))
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    tm.ok("monitor", 100, stdin=system_request(tm, 1), env={"ONE_LOCATION": str(one_location)})
    fields = sock.recv(65536).decode()[:-1].split(" ")
    assert fields[:4] == ["MONITOR_VM", "SUCCESS", "-1", "0"]
    sealed = zlib.decompress(base64.b64decode(fields[4], validate=True)[:-1])
    assert len(sealed) % 128 == 0                                      # whole RSA-1024 blocks
    plain = b""
    for i in range(0, len(sealed), 128):
        block = one_location / "block"
        block.write_bytes(sealed[i:i + 128])
        plain += subprocess.run(["openssl", "pkeyutl", "-decrypt", "-inkey", str(key), "-in", str(block)],
                                check=True, capture_output=True).stdout
    assert f"VM=[ID={vmid}, MONITOR=" in plain.decode() and plain.endswith(b"\n")


def vm_document(vmid: int, *tms: str) -> bytes:
    disks = [dict(onedsim.volatile_disk(i, kind="swap", size_mb=8), TM_MAD=name) for i, name in enumerate(tms)]
    return base64.b64encode(etree.tostring(onedsim.vm(vmid, disks)))


def test_migrations_move_nothing_and_run_the_other_tms(tm, source, vm_ids, tmp_path):
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "raw"))
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    before = tm.real(vmid, 0).read_bytes()
    # another TM beside ours, as installed in the same remotes tree: it records how it was called
    other = tm.remotes / "tm" / "recorder"
    other.mkdir(exist_ok=True)
    record = tmp_path / "calls"
    for action in ("premigrate", "postmigrate", "failmigrate"):
        script = other / action
        script.write_text(f'#!/bin/sh\necho "{action} $* $(cat | head -c 8)" >> {record}\n')
        script.chmod(0o755)
    vm_dir = tm.location + f"100/{vmid}"
    stdin = vm_document(vmid, "gluster", "recorder", "recorder", "../tm/recorder")    # the last is no TM's name
    for action in ("premigrate", "postmigrate", "failmigrate"):
        tm.ok(action, "127.0.0.1", "127.0.0.2", vm_dir, vmid, 100, stdin=stdin)
        tm.ok(action, "127.0.0.1", "127.0.0.2", vm_dir, vmid, 100, "shared", stdin=stdin)   # called by another TM
    calls = record.read_text().splitlines()
    assert calls == [f"{a} 127.0.0.1 127.0.0.2 {vm_dir} {vmid} 100 gluster {stdin[:8].decode()}"
                     for a in ("premigrate", "postmigrate", "failmigrate")]
    assert tm.real(vmid, 0).read_bytes() == before                     # nothing moved, nothing deleted

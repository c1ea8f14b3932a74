"""TM monitor of the system datastore (capacity on stdout, per-VM disk sizes to a UDP listener
standing in for monitord) and the migrate actions (stdin: the base64 VM document)."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time

import pytest
from lxml import etree

import onedsim
from one_gluster.tm import vm_listings
from support.drivers import deploy, gluster_disk, imported

MiB = 1 << 20


@pytest.fixture(scope="module")
def source(ds, sources_dir):
    return imported(ds, sources_dir, "mon", "raw")[0]


def monitor(tm, monitord, vm_disks: bool = True):
    return tm.ok("monitor", 100, stdin=onedsim.system_monitor_request(100, tm.location, vm_disks), env=monitord.env)


def du(path) -> int:
    """`du -mL`: the space a file uses, in MB rounded up."""
    return -(-os.stat(path).st_blocks * 512 // MiB)


def test_monitor_reports_capacity_and_sends_vm_disk_sizes(tm, source, monitord, vm_ids):
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "raw"))
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    tm.ok("mkswap", 16, tm.disk(vmid, 1), vmid, 100)
    tm.ok("snap_create", tm.disk(vmid, 0), 0, vmid, 101)
    lines = monitor(tm, monitord).stdout.split("\n")
    df = subprocess.run(["df", "-B1M", "-P", tm.location + "100"], capture_output=True, text=True).stdout
    total = df.splitlines()[1].split()[1]
    assert lines[0].startswith("USED_MB=") and lines[1].startswith("FREE_MB=") and lines[2] == f"TOTAL_MB={total}"
    [message] = monitord.messages()
    assert message.header == ["MONITOR_VM", "SUCCESS", "-1", "0"]
    assert message.payload.endswith(b"\n") and b"\n" not in message.payload[:-1]
    assert du(tm.real(vmid, 0)) >= 2
    assert message.vms()[vmid] == (f"DISK_SIZE = [ ID=0, SIZE={du(tm.real(vmid, 0))}] "
                                   f"SNAPSHOT_SIZE = [ ID=0, DISK_ID=0, SIZE={du(f'{tm.real(vmid, 0)}.snap/0')}] "
                                   f"DISK_SIZE = [ ID=1, SIZE={du(tm.real(vmid, 1))}]\n")


def test_monitor_without_vm_disks_sends_nothing(tm, monitord):
    monitor(tm, monitord, vm_disks=False)
    assert monitord.messages(wait=0.5) == []


def test_monitor_encrypts_for_a_keyed_monitord(tm, source, monitord, vm_ids, tmp_path):
    key, pub = tmp_path / "monitord.key", tmp_path / "monitord.pub"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "1024"], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", str(key), "-RSAPublicKey_out", "-out", str(pub)], check=True,
                   capture_output=True)
    monitord.configure(pubkey=str(pub))
    vmid = next(vm_ids)
    deploy(tm, vmid, gluster_disk(0, source, "raw"))
    tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    monitor(tm, monitord)
    [message] = monitord.messages()
    assert message.header == ["MONITOR_VM", "SUCCESS", "-1", "0"]
    sealed = message.payload
    assert len(sealed) % 128 == 0                                      # whole RSA-1024 blocks
    plain = b""
    for i in range(0, len(sealed), 128):
        block = tmp_path / "block"
        block.write_bytes(sealed[i:i + 128])
        plain += subprocess.run(["openssl", "pkeyutl", "-decrypt", "-inkey", str(key), "-in", str(block)],
                                check=True, capture_output=True).stdout
    assert f"VM=[ID={vmid}, MONITOR=" in plain.decode() and plain.endswith(b"\n")


def listed(tm, monitord, tmp_path) -> set[int]:
    """The VM directories of system datastore 100 that one monitor run opened (seen by strace)."""
    trace = tmp_path / "trace"
    system = os.path.realpath(f"{tm.location}100")
    stdin = onedsim.system_monitor_request(100, tm.location, True)
    done = subprocess.run(["strace", "-f", "-qq", "-s", "4096", "-e", "trace=openat", "-o", str(trace),
                           str(tm.remotes / "tm" / "gluster" / "monitor"), "100"], input=stdin,
                          capture_output=True, env={**tm.env, **monitord.env}, check=False)
    assert done.returncode == 0, done.stderr
    opened = re.findall(r'openat\(AT_FDCWD, "([^"]+)", [^)]*O_DIRECTORY', trace.read_text())
    return {int(os.path.basename(path)) for path in opened
            if os.path.dirname(os.path.realpath(path)) == system and os.path.basename(path).isdigit()}


def test_monitor_lists_again_only_the_vm_directories_that_changed(tm, source, monitord, vm_ids, tmp_path):
    vms = [next(vm_ids) for _ in range(3)]
    for vmid in vms:
        deploy(tm, vmid, gluster_disk(0, source, "raw"))
        tm.ok("clone", f"vm:{source}", tm.disk(vmid, 0), vmid, 101)
    time.sleep(vm_listings.RACY + 0.5)                 # a directory changed within RACY s is listed again
    listed(tm, monitord, tmp_path)                     # the run that keeps what it listed
    first = monitord.vms()
    assert all(first[vmid] == f"DISK_SIZE = [ ID=0, SIZE={du(tm.real(vmid, 0))}]\n" for vmid in vms)
    with open(tm.real(vms[0], 0), "r+b") as disk:      # a disk grows; its directory is as it was
        disk.seek(16 * MiB)
        disk.write(os.urandom(4 * MiB))
    tm.ok("mkswap", 16, tm.disk(vms[1], 1), vms[1], 100)
    shutil.rmtree(tm.real(vms[2]))
    assert vms[1] in listed(tm, monitord, tmp_path)
    reports = monitord.vms()
    assert reports[vms[0]] == f"DISK_SIZE = [ ID=0, SIZE={du(tm.real(vms[0], 0))}]\n"
    assert du(tm.real(vms[0], 0)) >= 5
    assert reports[vms[1]] == (f"DISK_SIZE = [ ID=0, SIZE={du(tm.real(vms[1], 0))}] "
                               f"DISK_SIZE = [ ID=1, SIZE={du(tm.real(vms[1], 1))}]\n")
    assert vms[2] not in reports
    time.sleep(vm_listings.RACY + 0.5)
    assert vms[0] not in listed(tm, monitord, tmp_path)             # as it was: its disk asked, not its listing
    assert monitord.vms()[vms[0]] == f"DISK_SIZE = [ ID=0, SIZE={du(tm.real(vms[0], 0))}]\n"


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

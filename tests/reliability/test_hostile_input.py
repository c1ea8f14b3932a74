"""Hostile input, generated (Hypothesis): DS requests and TM arguments and stdin documents built from
the real formats with fields drawn from what breaks parsers and paths (traversals, shell syntax,
control characters, huge and negative numbers, other volumes' names, broken base64 and XML), sent to
the installed executables as oned sends them. Every case ends with exit 0 or exit 1 and one plain
error line, never a traceback; a refused request changes nothing on the volume, and nothing outside
the volume ever changes.

    tests/run.sh tests/reliability/test_hostile_input.py                              # CI: fixed seed
    ONE_GLUSTER_FUZZ_EXAMPLES=2000 tests/run.sh tests/reliability/test_hostile_input.py  # the long run

oned's API is answered by the loopback stand-in (see conftest): the VMs it serves are generated too.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from lxml import etree

import onedsim
from support.drivers import Called, ImageDatastore
from support.killing import STAGED

EXAMPLES = int(os.environ.get("ONE_GLUSTER_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 60, database=None,
                suppress_health_check=list(HealthCheck))
CANARY = Path("/tmp/one-gluster-fuzz-canary")          # what shell injection in a field would make

DS_ACTIONS = ["cp", "clone", "mkfs", "rm", "stat", "monitor", "snap_delete", "snap_revert", "snap_flatten",
              "export"]
TM_ACTIONS = ["clone", "ln", "mkimage", "mkswap", "delete", "mv", "mvds", "cpds", "snap_create", "snap_delete",
              "snap_revert", "resize", "monitor", "context", "premigrate", "postmigrate"]


def hostile_text() -> st.SearchStrategy[str]:
    """Strings that break naive parsers, paths and shells, and some arbitrary text."""
    specific = st.sampled_from([
        "", " ", "..", "../../../../etc/passwd", "/etc/shadow", "/", "//", "/dev/zero", "/proc/self/environ",
        f"$(touch {CANARY})", f"`touch {CANARY}`", f"; touch {CANARY}", f"| touch {CANARY}", "-rf", "--help",
        "\n", "a\nb", "\t", "%00", "💥", "x" * 5000, "-1", "0", "99999999999999999999", "1e9", "NaN", "0x10",
        "qcow2", "raw", "vmdk", "iso", "ext4", "swap", "save_as", "YES", "NO", "ogtest", "ogother", "127.0.0.1",
        "http://127.0.0.1:1/none", "file:///etc/passwd", "ftp://x", "ssh://x/y", "../101/x", "disk.0",
        "disk.../..", "127.0.0.1:/etc", "localhost:", ":"])
    printable = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
    return st.one_of(specific, printable, st.integers(-2**63, 2**63).map(str))


def xml_safe(text: str) -> str:
    """lxml refuses the control characters XML cannot hold; oned's documents never hold them either."""
    return "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)


IMAGE_FIELDS = ["PATH", "SOURCE", "FORMAT", "FS", "SIZE", "TYPE", "TARGET_SNAPSHOT", "PERSISTENT", "STATE"]
DS_FIELDS = ["BASE_PATH", "GLUSTER_VOLUME", "GLUSTER_HOST", "SAFE_DIRS", "RESTRICTED_DIRS", "DRIVER", "TYPE",
             "LIMIT_TRANSFER_BW", "NO_DECOMPRESS", "CONVERT"]


def ds_payloads(ds: ImageDatastore) -> st.SearchStrategy[bytes]:
    """The base64 DS_DRIVER_ACTION_DATA of a real request with some fields replaced, or broken input."""
    def build(image_fields: dict[str, str], ds_fields: dict[str, str]) -> bytes:
        image = onedsim.image(7, path=str(ds.directory / "missing"), source=f"{ds.base_path}/{'0' * 32}", fmt="raw",
                              size_mb=8)
        node = ds.node()
        for root, fields in ((image, image_fields), (node, ds_fields)):
            for name, value in fields.items():
                target = root.find(name) if root.find(name) is not None else root.find(f"TEMPLATE/{name}")
                if target is None:
                    target = etree.SubElement(root.find("TEMPLATE"), name)
                target.text = xml_safe(value)
        return onedsim.request(node, image)

    real = st.builds(build, st.dictionaries(st.sampled_from(IMAGE_FIELDS), hostile_text(), max_size=4),
                     st.dictionaries(st.sampled_from(DS_FIELDS), hostile_text(), max_size=3))
    broken = st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(base64.b64encode),
                       st.sampled_from([b"", b"!!!!", base64.b64encode(b"<DS_DRIVER_ACTION_DATA>"),
                                        base64.b64encode(b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')]))
    return st.one_of(real, real, real, broken)


def volume_state(mount: Path) -> dict[str, int]:
    """Every entry on the volume and its size: what a refused request must leave as it was."""
    state = {}
    for dirpath, dirs, names in os.walk(mount):
        for name in dirs + names:
            path = os.path.join(dirpath, name)
            try:
                state[os.path.relpath(path, mount)] = os.lstat(path).st_size
            except FileNotFoundError:
                pass
    return state


def judged(done: Called, what: str) -> None:
    """Exit 0, or exit 1 with one plain error line; never a traceback, nothing injected."""
    assert "Traceback" not in done.stderr, f"{what}: {done.stderr}"
    assert done.returncode in (0, 1), f"{what}: exit {done.returncode}: {done.stderr}"
    if done.returncode:
        assert len(done.plain_errors) == 1, f"{what}: {done.stderr}"
    assert not CANARY.exists(), f"{what}: a field ran as a command"


def made_by(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {name for name in after.keys() - before.keys() if "/" not in name}


@pytest.fixture(scope="module")
def mount(lab) -> Path:
    CANARY.unlink(missing_ok=True)
    return Path(lab.mount_point)


@FUZZ
@given(data=st.data())
def test_datastore_requests(ds, mount, sources_dir, data):
    action = data.draw(st.sampled_from(DS_ACTIONS), label="action")
    payload = data.draw(ds_payloads(ds), label="stdin")
    object_id = data.draw(st.sampled_from(["0", "7", "-1", "x", "101"]), label="argv[1]")
    before, sources = volume_state(mount), set(os.listdir(sources_dir))
    done = subprocess.run([str(ds.remotes / "datastore" / "gluster" / action), object_id], input=payload,
                          capture_output=True)
    result = Called(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))
    judged(result, f"DS {action}")
    after = volume_state(mount)
    assert set(os.listdir(sources_dir)) == sources
    if result.returncode:
        assert after == before, f"DS {action} refused but changed the volume: {result.stderr}"
    for name in made_by(before, after):                   # a new image a valid request made: not kept
        path = mount / name
        assert not STAGED.fullmatch(name), f"DS {action} left {name}"
        path.unlink() if path.is_file() else None


def tm_argument() -> st.SearchStrategy[str]:
    """An argument as oned writes them (host:path, ids, sizes), or a hostile one."""
    paths = st.sampled_from(["disk.0", "disk.1", "disk.x", "", "..", "../../../etc", "deployment.0"])
    shaped = st.builds(lambda host, ds, vm, leaf: f"{host}:/{ds}/{vm}/{leaf}",
                       st.sampled_from(["127.0.0.1", "localhost", "", "evil;touch"]),
                       st.sampled_from(["tmp", "var/lib/one/datastores/100", "etc"]),
                       st.sampled_from(["10", "0", "-1", "..", "x"]), paths)
    return st.one_of(shaped, hostile_text(), st.integers(-5, 300).map(str))


def vm_documents() -> st.SearchStrategy[bytes]:
    """A base64 VM document as oned gives migrate actions on stdin, with hostile disk fields, or junk."""
    def build(fields: dict[str, str]) -> bytes:
        disk = {**onedsim.volatile_disk(0, kind="swap", size_mb=8), **{k: xml_safe(v) for k, v in fields.items()}}
        return base64.b64encode(etree.tostring(onedsim.vm(10, [disk])))

    doc = st.builds(build, st.dictionaries(st.sampled_from(["TM_MAD", "SOURCE", "DATASTORE_ID", "DISK_ID",
                                                            "FORMAT", "TYPE", "CLONE"]), hostile_text(), max_size=3))
    return st.one_of(st.just(b""), doc, st.binary(max_size=100))


@FUZZ
@given(data=st.data())
def test_transfer_manager_arguments(tm, mount, data):
    action = data.draw(st.sampled_from(TM_ACTIONS), label="action")
    args = data.draw(st.lists(tm_argument(), max_size=7), label="argv")
    stdin = data.draw(vm_documents(), label="stdin")
    before = volume_state(mount)
    result = tm.call(action, *args, stdin=stdin)
    judged(result, f"TM {action} {args}")
    if result.returncode:
        assert volume_state(mount) == before, f"TM {action} {args} refused but changed the volume: {result.stderr}"

"""oned.conf / vmm_execrc registration on files in OpenNebula's layouts (tests/fixtures/opennebula)."""

from __future__ import annotations

from pathlib import Path

import pytest

from one_gluster.admin import registration as reg

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "opennebula"
BLOCKS = reg.fragment_blocks((Path(__file__).resolve().parents[2] / "share/opennebula/oned-gluster.conf").read_text())


def lists(text: str) -> dict[str, list[str]]:
    found = {}
    for runner, option in reg.LISTS:
        arguments = reg.find(reg.parse(text), runner)[0].attributes["ARGUMENTS"]
        found[f"{runner} {option}"] = reg.option_list(arguments, option).text.split(",")
    return found


@pytest.mark.parametrize("name", ["oned.conf", "oned-legacy.conf"])
def test_register_is_complete_idempotent_and_undone_byte_for_byte(name):
    original = (FIXTURES / name).read_text()
    before = lists(original)
    registered, done = reg.register_oned(original, BLOCKS)
    assert done
    after = lists(registered)
    for key in before:                                  # gluster appended, nothing else moved
        assert after[key] == before[key] + ["gluster"]
    assert [f.status for f in reg.verify(registered, None)] == ["ok"] * 7
    tm_conf = reg.find(reg.parse(registered), "TM_MAD_CONF", "gluster")
    assert len(tm_conf) == 1 and tm_conf[0].attribute("LN_TARGET") == "NONE"
    assert tm_conf[0].attribute("CLONE_TARGET") == "SYSTEM" and tm_conf[0].attribute("SHARED") == "YES"
    ds_conf = reg.find(reg.parse(registered), "DS_MAD_CONF", "gluster")[0]
    assert ds_conf.attribute("MARKETPLACE_ACTIONS") == "export"
    inherited = [a.value.text for a in reg.find(reg.parse(registered), "INHERIT_DATASTORE_ATTR")]
    assert inherited.count("GLUSTER_HOST") == 1 and inherited.count("GLUSTER_VOLUME") == 1
    # every other driver's block is still there, untouched
    for other in reg.parse(original):
        if other.name in ("TM_MAD_CONF", "DS_MAD_CONF", "VM_MAD", "MARKET_MAD_CONF"):
            assert original[other.start:other.end] in registered
    assert reg.register_oned(registered, BLOCKS) == (registered, [])
    assert reg.unregister(registered)[0] == original


def test_commented_out_examples_are_not_edited():
    original = (FIXTURES / "oned.conf").read_text()
    registered, _ = reg.register_oned(original, BLOCKS)
    assert '# TM_MAD = [\n#     EXECUTABLE = "one_tm",\n#     ARGUMENTS = "-t 15 -d dummy,shared"' in registered
    assert registered.count(",gluster") == 3


def test_before_registration_verify_names_each_missing_piece():
    findings = reg.verify((FIXTURES / "oned.conf").read_text(), (FIXTURES / "vmm_execrc").read_text())
    assert {f.check: f.status for f in findings} == {
        "TM_MAD -d": "fail", "DATASTORE_MAD -d": "fail", "DATASTORE_MAD -s": "fail", "TM_MAD_CONF": "fail",
        "DS_MAD_CONF": "fail", "INHERIT_DATASTORE_ATTR GLUSTER_HOST": "ok",
        "INHERIT_DATASTORE_ATTR GLUSTER_VOLUME": "ok", "LIVE_DISK_SNAPSHOTS": "warn"}


def test_a_hand_registration_is_completed_not_duplicated():
    original = (FIXTURES / "oned.conf").read_text().replace("iscsi_libvirt\"", "iscsi_libvirt,gluster\"", 1)
    original += '\nTM_MAD_CONF = [ NAME = "gluster", LN_TARGET = "NONE", CLONE_TARGET = "SYSTEM", SHARED = "YES" ]\n'
    registered, done = reg.register_oned(original, BLOCKS)
    assert done == ["DATASTORE_MAD: gluster added to -d, -s", "DS_MAD_CONF for gluster added"]
    assert len(reg.find(reg.parse(registered), "TM_MAD_CONF", "gluster")) == 1
    assert reg.unregister(registered)[0] == original     # the admin's own entries stay


def test_live_disk_snapshots():
    original = (FIXTURES / "vmm_execrc").read_text()
    registered, done = reg.register_vmm(original)
    line = next(x for x in registered.splitlines() if x.startswith("LIVE_DISK_SNAPSHOTS="))
    assert line.endswith(' qemu-ssh kvm-gluster qemu-gluster"') and done
    assert reg.register_vmm(registered) == (registered, [])
    assert reg.unregister(registered)[0] == original
    bare = "LIBVIRT_URI=qemu:///system\n"
    added, _ = reg.register_vmm(bare)
    assert 'LIVE_DISK_SNAPSHOTS="kvm-gluster qemu-gluster"' in added and reg.unregister(added)[0] == bare


def test_vectors_and_multiline_strings_parse():
    text = 'A = "x\ny" # c\nV = [ K = "1,2", L = bare ]\n# W = [ K = 2 ]\n'
    parsed = reg.parse(text)
    assert [(a.name, a.value.text if a.value else None) for a in parsed] == [("A", "x\ny"), ("V", None)]
    assert parsed[1].attribute("k") == "1,2" and parsed[1].attribute("L") == "bare"

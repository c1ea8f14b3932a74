"""`one-gluster host check` over what the host probe printed here (tests/fixtures/host: this machine
with the test volumes mounted, QEMU's gluster driver present, and hidden in a private mount
namespace): the facts read, the findings, and the DISK_TYPEs a host can run."""

from __future__ import annotations

from pathlib import Path

import pytest

from one_gluster.admin import host_check

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "host"
LAB = "/tmp/pytest-of-root/pytest-22/lab0/datastores/100"


def facts(name: str = "probe-details.txt", edit=lambda text: text) -> host_check.Facts:
    return host_check.parse(edit((RECORDED / name).read_text()))


def statuses(findings) -> dict[str, str]:
    return {f.check: f.status for f in findings}


def test_the_probe_s_facts():
    found = facts()
    assert (found.gfapi, found.qemu, found.libvirtd) == ("YES", "7.2.22", True)
    lab = next(m for m in found.mounts if m.point == LAB)
    assert lab == host_check.Mount(True, "127.0.1.1:/ogtest", LAB, "0:0", ("127.0.1.1",))
    assert ("glusterd", "127.0.1.1", "24007", "open") in found.ports
    assert any(port[0] == "brick" and port[4].endswith("/lab0/bricks/ogtest/b0") for port in found.ports)
    assert facts("probe-details-no-driver.txt").gfapi == "NO"


def test_what_a_host_can_run():
    assert host_check.disk_types(facts(), LAB) == ["GLUSTER", "FILE"]
    assert host_check.disk_types(facts("probe-details-no-driver.txt"), LAB) == ["FILE"]
    assert host_check.disk_types(facts(), "/var/lib/one/datastores/100") == []          # not mounted there
    dead = facts(edit=lambda text: text.replace(f"MOUNT=live 127.0.1.1:/ogtest {LAB}",
                                                f"MOUNT=dead 127.0.1.1:/ogtest {LAB}"))
    assert host_check.disk_types(dead, LAB) == []
    closed = facts(edit=lambda text: text.replace("24007 open", "24007 closed"))
    assert host_check.disk_types(closed, LAB) == []


@pytest.mark.parametrize("version, status, says", [
    ("7.2.22", "ok", "7.2.22"), ("9.2.0", "note", "deprecated since 9.2"), ("10.0.2", "note", "deprecated"),
    ("11.1.0", "note", "without the gluster driver"), ("", "warn", "unknown")])
def test_qemu_version_against_the_driver_s_removal(version, status, says):
    found = host_check.qemu_findings(facts()._replace(qemu=version))
    assert found[1].status == status and says in found[1].found


def test_a_qemu_without_the_driver_says_what_to_do():
    driver = host_check.qemu_findings(facts("probe-details-no-driver.txt"))[0]
    assert driver.status == "warn" and "Unknown protocol 'gluster+unix'" in driver.found
    assert "--disk-type FILE" in driver.fix


def test_mount_findings():
    found = statuses(host_check.mount_findings(facts(), LAB, (0, 0)))
    assert found == {f"mount {LAB}": "ok", f"mount {LAB} failover": "warn"}
    owned = statuses(host_check.mount_findings(facts(), LAB, (9869, 9869)))
    assert owned[f"mount {LAB} owner"] == "warn"
    assert statuses(host_check.mount_findings(facts(), "/elsewhere", None)) == {"mount": "fail"}


def test_port_findings():
    closed = facts(edit=lambda text: text.replace("24007 open", "24007 closed", 1))
    found = host_check.port_findings(closed)
    assert [f.status for f in found if f.check == "glusterd 127.0.1.1:24007"][0] == "fail"
    offline = facts(edit=lambda text: text.replace("open 127.0.1.1:/tmp/pytest-of-root/pytest-22/lab0/bricks",
                                                   "offline 127.0.1.1:/tmp/pytest-of-root/pytest-22/lab0/bricks"))
    assert any(f.status == "warn" and f.found == "offline" for f in host_check.port_findings(offline))

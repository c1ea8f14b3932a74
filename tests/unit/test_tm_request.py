"""The TM request layer: disk id lists, the VM document on stdin (plain or base64, that VM's only), the
one VM model read from it, and where a backup stands in its chain (BACKUP_CONFIG)."""

from __future__ import annotations

import base64
import io

import pytest
from lxml import etree

import onedsim
from one_gluster.core.errors import DriverError, RequestError
from one_gluster.core.tm_request import TmCall
from one_gluster.core.vm import LCM_RUNNING
from one_gluster.tm.backup import Chain, chain_of

DISKS = [{"DISK_ID": "0", "TARGET": "vda", "TM_MAD": "gluster", "FORMAT": "qcow2"},
         {"DISK_ID": "2", "TARGET": "vdc", "TM_MAD": "ssh"}, {"TARGET": "hda", "TYPE": "CDROM"}]


def call(*args: str, stdin: bytes = b"") -> TmCall:
    return TmCall("prebackup", args, io.BytesIO(stdin))


def document(vmid: int = 7, **config: str) -> bytes:
    vm = onedsim.vm(vmid, DISKS, lcm_state=LCM_RUNNING, deploy_id=f"one-{vmid}")
    for key, value in config.items():
        etree.SubElement(vm.find("BACKUPS/BACKUP_CONFIG"), key).text = value
    return etree.tostring(vm)


def test_disk_ids():
    assert call("h:/d", "0:2:").disk_ids(1) == [0, 2]
    for bad in ("", ":", "0:x", "1e3", "٣"):
        with pytest.raises(RequestError, match="Expected disk ids separated by ':'"):
            call("h:/d", bad).disk_ids(1)


def test_the_vm_document_plain_or_base64_is_read_into_the_vm_model():
    for sent in (document(), base64.b64encode(document())):
        read = call(stdin=sent + b"\n").vm_document(7)
        assert read.sent == sent and etree.fromstring(read.xml).findtext("ID") == "7"
        vm = read.vm
        assert (vm.id, vm.lcm_state, vm.deploy_id, vm.running) == (7, LCM_RUNNING, "one-7", True)
        assert sorted(vm.disks) == [0, 2]                       # a DISK without DISK_ID is left out
        assert vm.disk(2).get("TM_MAD") == "ssh" and vm.backup_config.values == {}
    with pytest.raises(DriverError, match="VM 7 has no disk 1"):
        vm.disk(1)


def test_a_missing_or_foreign_vm_document():
    assert call(stdin=b" \n").vm_document(7) is None
    for sent in (document(8), b"<IMAGE><ID>7</ID></IMAGE>"):
        with pytest.raises(RequestError, match="The document on stdin is not that of VM 7"):
            call(stdin=sent).vm_document(7)
    assert call(stdin=document(8)).vm_document().vm.id == 8     # migrate takes the VM's document as it comes


def test_backup_chain_from_backup_config():
    chain = (lambda **config: chain_of(call(stdin=document(**config)).vm_document(7).vm))
    assert chain() == chain(MODE="FULL") == Chain(0, None, None)
    assert chain(MODE="INCREMENT") == Chain(0, None, "one-7-0")
    assert chain(MODE="increment", LAST_INCREMENT_ID="2", INCREMENT_MODE="CBT") == Chain(3, "one-7-2", "one-7-3")
    with pytest.raises(RequestError, match="Unknown backup MODE 'DIFF'"):
        chain(MODE="DIFF")
    with pytest.raises(RequestError, match="LAST_INCREMENT_ID"):
        chain(MODE="INCREMENT", LAST_INCREMENT_ID="-5")
    with pytest.raises(DriverError, match="INCREMENT_MODE=CBT, not SNAPSHOT"):
        chain(MODE="INCREMENT", INCREMENT_MODE="SNAPSHOT")

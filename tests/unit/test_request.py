"""Request parsing against documents captured from a real oned, and our builder against them."""

from __future__ import annotations

import base64
import io

import pytest
from lxml import etree

import onedsim
from one_gluster.core.ds_request import DsRequest, read_ds_request
from one_gluster.core.errors import RequestError
from one_gluster.core.xmldoc import decode_base64_xml, parse_xml


def load(fixtures, name: str) -> DsRequest:
    return DsRequest.from_element(parse_xml((fixtures / name).read_bytes()))


def test_cp_request_fields(fixtures):
    req = load(fixtures, "datastore-cp.stdin.xml")
    assert req.image.id == 0 and req.image.type == 0 and req.image.path == "/var/tmp/images/base.qcow2"
    assert req.image.size_mb == 128 and req.image.source == "" and req.image.target_snapshot == -1
    assert req.datastore.id == 101 and req.datastore.base_path == "/var/lib/one//datastores/101"
    assert req.datastore.template.get("GLUSTER_VOLUME") == "onee2e"
    assert req.datastore.template.get("GLUSTER_HOST") == "127.0.1.1:24007"
    assert req.datastore.template.get("SAFE_DIRS") == "/var/tmp"


def test_stat_request_is_minimal(fixtures):
    req = load(fixtures, "datastore-stat.stdin.xml")
    assert req.image.path == "/var/tmp/images/base.qcow2" and req.image.size_mb is None


def test_mkfs_save_as_and_monitor(fixtures):
    assert load(fixtures, "datastore-mkfs.stdin.xml").image.format == "save_as"
    monitor = load(fixtures, "datastore-monitor.stdin.xml")
    assert monitor.image is None and monitor.datastore.id == 101
    system = load(fixtures, "tm-monitor.stdin.xml")
    assert system.datastore_location == "/var/lib/one//datastores" and system.monitor_vm_disks


def shape(node: etree._Element) -> list:
    """The element tree's tags in document order, without text."""
    return [node.tag, [shape(child) for child in node]]


@pytest.mark.parametrize("name,build", [
    ("datastore-cp.stdin.xml", lambda t: onedsim.request(
        onedsim.datastore(101, "/var/lib/one//datastores/101", t),
        onedsim.image(0, path="/var/tmp/images/base.qcow2", size_mb=128))),
    ("datastore-monitor.stdin.xml", lambda t: onedsim.request(
        onedsim.datastore(101, "/var/lib/one//datastores/101", t))),
    ("datastore-stat.stdin.xml", lambda t: onedsim.request(
        onedsim.datastore(101, "/var/lib/one//datastores/101", t, images=(0,)),
        onedsim.stat_image("/var/tmp/images/base.qcow2"))),
])
def test_builder_matches_oned_field_for_field(fixtures, name, build):
    captured = parse_xml((fixtures / name).read_bytes())
    template = {c.tag: c.text or "" for c in captured.find("DATASTORE/TEMPLATE")}
    built = decode_base64_xml(build(template))
    strip = lambda n: [shape(c) for c in n if c.tag not in ("TEMPLATE", "SNAPSHOTS", "IMAGES")]
    for part in ("IMAGE", "DATASTORE"):
        if captured.find(part) is not None:
            assert strip(built.find(part)) == strip(captured.find(part)), part
    built_ds = DsRequest.from_element(built).datastore
    assert built_ds.template.values == DsRequest.from_element(captured).datastore.template.values


def test_argv_forms():
    payload = onedsim.request(onedsim.datastore(7, "/x", {"GLUSTER_VOLUME": "v"}))
    for args, stdin in ((["7"], payload), (["-", "7"], payload), ([payload.decode(), "7"], b"")):
        assert read_ds_request(args, io.BytesIO(stdin)).datastore.id == 7
    with pytest.raises(RequestError, match="Missing arguments"):
        read_ds_request([], io.BytesIO(payload))


@pytest.mark.parametrize("data,text", [
    (b"<a>", "Malformed XML"),
    (b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', "DOCTYPE"),
])
def test_hardened_parser(data, text):
    with pytest.raises(RequestError, match=text):
        parse_xml(data)


def test_external_entities_never_resolved():
    data = b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
    with pytest.raises(RequestError):
        decode_base64_xml(base64.b64encode(data))


def test_base64_with_whitespace_and_garbage():
    payload = onedsim.request(onedsim.datastore(1, "/x", {}))
    assert decode_base64_xml(payload[:10] + b"\n" + payload[10:] + b"\n").tag == "DS_DRIVER_ACTION_DATA"
    with pytest.raises(RequestError, match="not valid base64"):
        decode_base64_xml(b"abc$")

"""Every XML document the drivers read (oned's requests and VM documents, virsh and gluster output),
parsed with one hardened lxml parser. Kept apart from the request model so that an action which only
reads a VM document (premigrate) does not build it."""

from __future__ import annotations

import binascii

from lxml import etree

from one_gluster.core.errors import RequestError

# No entities, no DTD, no network, no huge trees: a document is data, never instructions.
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


def parse_xml(data: bytes, what: str = "request") -> etree._Element:
    """Parse one XML document; a DOCTYPE or any syntax error is refused."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise RequestError(f"Malformed XML in the {what}: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise RequestError(f"Refusing a {what} with a DOCTYPE declaration")
    return root


def decode_base64_xml(payload: bytes | str, what: str = "request") -> etree._Element:
    """Decode oned's base64 payload (one line, maybe padded with whitespace) and parse it."""
    if isinstance(payload, str):
        payload = payload.encode("ascii", "replace")
    compact = b"".join(payload.split())
    if not compact:
        raise RequestError(f"Empty {what}: expected base64 XML from oned")
    try:
        data = binascii.a2b_base64(compact, strict_mode=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"Malformed {what}: not valid base64") from None
    return parse_xml(data, what)

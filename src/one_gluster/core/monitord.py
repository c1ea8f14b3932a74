"""Messages to OpenNebula's monitord, in the wire format of `send_to_monitor` (scripts_common.sh):
`<TYPE> SUCCESS|FAILURE <oid> <ts> <base64>` over UDP, where the base64 holds the zlib-deflated
payload, RSA-encrypted first when monitord.conf names a PUBKEY (PKCS#1 v1.5 blocks, as monitord's
own client encrypts them)."""

from __future__ import annotations

import base64
import os
import re
import socket
import tempfile
import time
import zlib
from dataclasses import dataclass
from typing import Optional, Sequence

from one_gluster.core.commands import run
from one_gluster.core.errors import DriverError

PKCS1_OVERHEAD = 11


@dataclass(frozen=True)
class Monitord:
    address: str
    port: int
    pubkey: str        # path of monitord's public key, "" for none


def config_path() -> str:
    location = os.environ.get("ONE_LOCATION")
    return f"{location}/etc/monitord.conf" if location else "/etc/one/monitord.conf"


def read_config(path: Optional[str] = None) -> Monitord:
    """MONITOR_ADDRESS, PORT and PUBKEY of the NETWORK section, read as send_to_monitor reads them."""
    path = path or config_path()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise DriverError(f"Cannot read monitord's configuration {path}: {exc.strerror}") from None

    def value(name: str) -> str:
        match = re.search(rf"^[ \t]*{name}[ \t]*=[ \t]*\"?([^\",\s]*)", text, re.MULTILINE)
        return match.group(1) if match else ""

    address, port = value("MONITOR_ADDRESS"), value("PORT")
    if not port.isdigit():
        raise DriverError(f"No PORT in {path}")
    return Monitord("127.0.0.1" if not address or "auto" in address else address, int(port), value("PUBKEY"))


def _encrypt(data: bytes, pubkey: str) -> bytes:
    """RSA PKCS#1 v1.5, block by block, with `openssl` (the key is monitord's PEM `RSA PUBLIC KEY`)."""
    text = run("openssl", "pkey", "-pubin", "-in", pubkey, "-noout", "-text", what="Reading monitord's key")
    bits = re.search(r"\((\d+) bit\)", text)
    if not bits:
        raise DriverError(f"Cannot tell the size of monitord's key {pubkey}")
    block = int(bits.group(1)) // 8 - PKCS1_OVERHEAD
    out = b""
    with tempfile.TemporaryDirectory(prefix="one-gluster-monitor-") as tmp:
        for index in range(0, len(data), block):
            chunk, sealed = os.path.join(tmp, "in"), os.path.join(tmp, "out")
            with open(chunk, "wb") as f:
                f.write(data[index:index + block])
            run("openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", pubkey, "-in", chunk, "-out", sealed,
                what="Encrypting for monitord")
            with open(sealed, "rb") as f:
                out += f.read()
    return out


def pack(payload: str, pubkey: str = "") -> str:
    """The base64 field: `echo $payload` (whitespace collapsed, a newline), encrypted if keyed,
    deflated, and the newline Ruby's `puts` adds."""
    data = (" ".join(payload.split()) + "\n").encode()
    if pubkey:
        data = _encrypt(data, pubkey)
    return base64.b64encode(zlib.compress(data) + b"\n").decode("ascii")


DATAGRAM = 65507        # the most one UDP datagram over IPv4 carries (65,535 less the IP and UDP headers)


def send(kind: str, ok: bool, oid: int, records: Sequence[str], monitord: Optional[Monitord] = None) -> int:
    """Send `records` (the lines of one payload) to monitord as `kind` messages, in as few as each fit
    one UDP datagram, and return how many were sent. monitord takes each message on its own: a
    MONITOR_VM message updates the VMs it names, and one of the datastore monitor (oid -1, timestamp
    0) is never dropped as older than the last."""
    monitord = monitord or read_config()
    pubkey = monitord.pubkey if monitord.pubkey and os.access(monitord.pubkey, os.R_OK) else ""
    stamp = 0 if oid == -1 else int(time.time())
    head = f"{kind} {'SUCCESS' if ok else 'FAILURE'} {oid} {stamp} "
    lines = _datagrams(head, list(records), pubkey)
    family = socket.AF_INET6 if ":" in monitord.address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        for line in lines:
            sock.sendto(line, (monitord.address, monitord.port))
    return len(lines)


def _datagrams(head: str, records: list[str], pubkey: str) -> list[bytes]:
    """The messages that carry `records`, each within DATAGRAM bytes: all in one when they fit, else
    cut in halves until each part fits. One record too long for a datagram is an error."""
    payload = "\n".join(records)
    line = f"{head}{pack(payload, pubkey)}\n".encode("ascii")
    if len(line) <= DATAGRAM:
        return [line]
    if len(records) < 2:
        raise DriverError(f"A monitoring record of {len(line)} bytes does not fit one UDP datagram")
    half = len(records) // 2
    return _datagrams(head, records[:half], pubkey) + _datagrams(head, records[half:], pubkey)

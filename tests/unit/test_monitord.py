"""Messages to monitord: what one UDP datagram carries, and a payload that needs several."""

from __future__ import annotations

import base64
import os
import re
import socket
import zlib

import pytest

from one_gluster.core import monitord


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.settimeout(5)
    yield sock, monitord.Monitord("127.0.0.1", sock.getsockname()[1], "")
    sock.close()


def received(sock: socket.socket, count: int) -> list[tuple[list[str], str]]:
    """`count` datagrams: (header fields, the payload deflated and base64'ed as send_to_monitor does)."""
    out = []
    for _ in range(count):
        datagram = sock.recv(1 << 17)
        assert len(datagram) <= monitord.DATAGRAM and datagram.endswith(b"\n") and datagram.count(b"\n") == 1
        fields = datagram.decode()[:-1].split(" ")
        out.append((fields[:4], zlib.decompress(base64.b64decode(fields[4])[:-1]).decode()))
    return out


def vm_record(vmid: int) -> str:
    """A VM= line as the TM monitor makes it; random sizes, so that it deflates as little as real ones."""
    attrs = f"DISK_SIZE = [ ID=0, SIZE={int.from_bytes(os.urandom(3), 'big')}] {os.urandom(12).hex()}"
    return f'VM=[ID={vmid}, MONITOR="{base64.b64encode(attrs.encode()).decode()}"]'


def test_a_small_payload_is_one_message(listener):
    sock, target = listener
    assert monitord.send("MONITOR_VM", True, -1, [vm_record(1), vm_record(2)], target) == 1
    [(head, payload)] = received(sock, 1)
    assert head == ["MONITOR_VM", "SUCCESS", "-1", "0"]
    assert re.findall(r"VM=\[ID=(\d+),", payload) == ["1", "2"]


def test_ten_thousand_vms_go_in_several_datagrams_each_of_whole_records(listener):
    sock, target = listener
    records = [vm_record(i) for i in range(10_000)]
    sent = monitord.send("MONITOR_VM", True, -1, records, target)
    assert sent > 1
    messages = received(sock, sent)
    assert all(head == ["MONITOR_VM", "SUCCESS", "-1", "0"] for head, _ in messages)
    ids = [int(i) for _, payload in messages for i in re.findall(r"VM=\[ID=(\d+), MONITOR=\"[^\"]+\"\]", payload)]
    assert ids == list(range(10_000))                          # every VM once, in order, none cut in two


def test_a_record_longer_than_a_datagram_is_refused(listener):
    _, target = listener
    with pytest.raises(monitord.DriverError, match="does not fit one UDP datagram"):
        monitord.send("MONITOR_VM", True, -1, [vm_record(1) + os.urandom(70_000).hex()], target)

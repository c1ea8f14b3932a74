"""Messages to monitord: what one UDP datagram carries, and a payload that needs several."""

from __future__ import annotations

import base64
import os
import re
import socket

import pytest

import onedsim
from one_gluster.core import monitord


@pytest.fixture
def listener(tmp_path):
    """monitord's stand-in, and where send() finds it."""
    stand_in = onedsim.Monitord(str(tmp_path))
    stand_in.sock.settimeout(5)
    yield stand_in.sock, monitord.Monitord("127.0.0.1", stand_in.sock.getsockname()[1], "")
    stand_in.close()


def received(sock: socket.socket, count: int) -> list[onedsim.Message]:
    """`count` messages, each a datagram within what UDP carries."""
    messages = [onedsim.Message.decode(sock.recv(1 << 17)) for _ in range(count)]
    assert all(m.size <= monitord.DATAGRAM for m in messages)
    return messages


def vm_record(vmid: int) -> str:
    """A VM= line as the TM monitor makes it; random sizes, so that it deflates as little as real ones."""
    attrs = f"DISK_SIZE = [ ID=0, SIZE={int.from_bytes(os.urandom(3), 'big')}] {os.urandom(12).hex()}"
    return f'VM=[ID={vmid}, MONITOR="{base64.b64encode(attrs.encode()).decode()}"]'


def test_a_small_payload_is_one_message(listener):
    sock, target = listener
    assert monitord.send("MONITOR_VM", True, -1, [vm_record(1), vm_record(2)], target) == 1
    [message] = received(sock, 1)
    assert message.header == ["MONITOR_VM", "SUCCESS", "-1", "0"]
    assert re.findall(rb"VM=\[ID=(\d+),", message.payload) == [b"1", b"2"]


def test_ten_thousand_vms_go_in_several_datagrams_each_of_whole_records(listener):
    sock, target = listener
    records = [vm_record(i) for i in range(10_000)]
    sent = monitord.send("MONITOR_VM", True, -1, records, target)
    assert sent > 1
    messages = received(sock, sent)
    assert all(m.header == ["MONITOR_VM", "SUCCESS", "-1", "0"] for m in messages)
    ids = [int(i) for m in messages for i in re.findall(rb'VM=\[ID=(\d+), MONITOR="[^"]+"\]', m.payload)]
    assert ids == list(range(10_000))                          # every VM once, in order, none cut in two


def test_a_record_longer_than_a_datagram_is_refused(listener):
    _, target = listener
    with pytest.raises(monitord.DriverError, match="does not fit one UDP datagram"):
        monitord.send("MONITOR_VM", True, -1, [vm_record(1) + os.urandom(70_000).hex()], target)

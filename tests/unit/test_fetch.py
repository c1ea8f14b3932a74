"""How a datastore takes images in: LIMIT_TRANSFER_BW read as curl reads it, and the throttled reader."""

from __future__ import annotations

import io
import time

import pytest

from one_gluster.core.ds_request import DS_FILE, DS_IMAGE, Datastore
from one_gluster.core.errors import DriverError
from one_gluster.core.image_sources import Fetch, Throttled, transfer_rate
from one_gluster.core.template import Template


@pytest.mark.parametrize("text,rate", [
    ("", None), ("0", None), ("1000", 1000), ("512K", 512 << 10), ("512k", 512 << 10), ("10M", 10 << 20),
    ("1.5m", 3 << 19), ("2G", 2 << 30), (" 64K ", 64 << 10),
])
def test_transfer_rate(text, rate):
    assert transfer_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "10X", "-5", "M", "nan", "inf", "1e400"])
def test_transfer_rate_refuses(text):
    with pytest.raises(DriverError, match="LIMIT_TRANSFER_BW .* is not a rate"):
        transfer_rate(text)


def datastore(ds_type: int, **template: str) -> Datastore:
    return Datastore(id=1, name="ds", base_path="/b", type=ds_type, ds_mad="gluster", tm_mad="gluster",
                     template=Template(template))


def test_fetch_for_datastore_reads_opennebula_defaults():
    assert Fetch.for_datastore(datastore(DS_IMAGE)).decompress
    assert not Fetch.for_datastore(datastore(DS_FILE)).decompress           # files are kept as they are
    assert Fetch.for_datastore(datastore(DS_FILE, NO_DECOMPRESS="no")).decompress
    assert not Fetch.for_datastore(datastore(DS_IMAGE, NO_DECOMPRESS="YES")).decompress
    assert Fetch.for_datastore(datastore(DS_IMAGE, LIMIT_TRANSFER_BW="1M")).rate == 1 << 20


def test_throttled_reader_keeps_the_rate_and_the_bytes():
    data = bytes(range(256)) * 1200                      # 300 KiB
    start = time.monotonic()
    reader = io.BufferedReader(Throttled(io.BytesIO(data), 1 << 20))     # 1 MiB/s: at least 0.29 s
    got = reader.read()
    elapsed = time.monotonic() - start
    assert got == data
    assert elapsed >= len(data) / (1 << 20) * 0.98
    assert elapsed < 2.0

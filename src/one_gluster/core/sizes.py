"""Sizes as OpenNebula counts them: in MB (MiB), rounded up."""

from __future__ import annotations

MiB = 1 << 20


def ceil_mb(size_bytes: int) -> int:
    return -(-size_bytes // MiB)

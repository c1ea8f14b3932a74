"""Waiting for what happens in the background, and the tools a test needs."""

from __future__ import annotations

import shutil
import time


def wait_for(predicate, seconds: float, poll: float = 0.5) -> bool:
    """Whether `predicate()` comes true within `seconds`, asked every `poll` seconds."""
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(poll)
    return predicate()


def which(tool: str) -> bool:
    return shutil.which(tool) is not None

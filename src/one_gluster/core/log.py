"""Log lines on stderr in the form oned forwards to its logs: `INFO: <action>: text`."""

from __future__ import annotations

import sys

_action = "one_gluster"


def set_action(name: str) -> None:
    """Name the running action; every later line is tagged with it."""
    global _action
    _action = name


def _emit(level: str, message: str) -> None:
    # One physical line each: oned treats every stderr line on its own.
    text = " ".join(message.split("\n"))
    sys.stderr.write(f"{level}: {_action}: {text}\n")
    sys.stderr.flush()


def info(message: str) -> None:
    _emit("INFO", message)


def error(message: str) -> None:
    _emit("ERROR", message)

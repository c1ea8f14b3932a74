"""Exceptions that every layer raises and the driver layer reports."""

from __future__ import annotations


class DriverError(Exception):
    """A failure to report to OpenNebula as one plain, human-readable line."""


class RequestError(DriverError):
    """The request from oned is malformed or misses something required."""


class CommandError(DriverError):
    """An external command failed; `detail` keeps what it printed for the log."""

    def __init__(self, message: str, command: str, detail: str) -> None:
        super().__init__(message)
        self.command = command
        self.detail = detail

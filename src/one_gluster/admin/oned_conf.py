"""OpenNebula's configuration syntax (`oned.conf`, `monitord.conf`, datastore templates), read with
the position of every value, so that an edit can change one value and keep the rest byte for byte.
Standard library only, as the registration that install.sh runs with the system's python3."""

from __future__ import annotations

import re
from typing import NamedTuple, Optional


class Value(NamedTuple):
    text: str
    start: int           # span of the text inside the file (inside the quotes when quoted)
    end: int


class Assignment(NamedTuple):
    """A top-level `NAME = value` or `NAME = [ KEY = value, ... ]` of an OpenNebula config file."""

    name: str            # upper case
    start: int
    end: int             # after the value (after `]` for a vector)
    value: Optional[Value]
    attributes: dict[str, Value]

    def attribute(self, key: str) -> str:
        value = self.attributes.get(key.upper())
        return value.text if value else ""


def _skip(text: str, pos: int) -> int:
    """Past whitespace and comments."""
    while pos < len(text):
        if text[pos] == "#":
            newline = text.find("\n", pos)
            pos = len(text) if newline < 0 else newline + 1
        elif text[pos].isspace():
            pos += 1
        else:
            break
    return pos


def _value(text: str, pos: int, stops: str) -> Value:
    """A quoted string (may span lines; backslash escapes) or a bare word up to one of `stops`."""
    if pos < len(text) and text[pos] == '"':
        end = pos + 1
        while end < len(text) and text[end] != '"':
            end += 2 if text[end] == "\\" else 1
        return Value(text[pos + 1:end], pos + 1, end)
    end = pos
    while end < len(text) and text[end] not in stops and not text[end].isspace():
        end += 1
    return Value(text[pos:end], pos, end)


def _after(value: Value, text: str) -> int:
    return value.end + 1 if value.end < len(text) and text[value.end] == '"' else value.end


def parse(text: str) -> list[Assignment]:
    """The top-level assignments of `text`, in order (comments skipped)."""
    found = []
    pos = _skip(text, 0)
    ident = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
    while pos < len(text):
        match = ident.match(text, pos)
        if not match:
            pos = _skip(text, pos + 1)
            continue
        start, pos = pos, _skip(text, match.end())
        if pos >= len(text) or text[pos] != "=":
            continue
        pos = _skip(text, pos + 1)
        if pos < len(text) and text[pos] == "[":
            attributes, pos = _vector(text, pos + 1)
            found.append(Assignment(match.group().upper(), start, pos, None, attributes))
        else:
            value = _value(text, pos, "#")
            pos = _after(value, text)
            found.append(Assignment(match.group().upper(), start, pos, value, {}))
        pos = _skip(text, pos)
    return found


def _vector(text: str, pos: int) -> tuple[dict[str, Value], int]:
    attributes = {}
    while True:
        pos = _skip(text, pos)
        if pos >= len(text) or text[pos] == "]":
            return attributes, min(pos + 1, len(text))
        if text[pos] == ",":
            pos += 1
            continue
        key = _value(text, pos, "=,]#")
        pos = _skip(text, key.end)
        if pos < len(text) and text[pos] == "=":
            value = _value(text, _skip(text, pos + 1), ",]#")
            attributes[key.text.upper()] = value
            pos = _after(value, text)
        else:
            pos = max(pos, key.end + 1)


def find(assignments: list[Assignment], name: str, driver: Optional[str] = None) -> list[Assignment]:
    """Assignments called `name` (vectors with NAME = `driver`, when given)."""
    return [a for a in assignments
            if a.name == name and (driver is None or a.attribute("NAME").lower() == driver)]


def option_list(arguments: Value, option: str) -> Optional[Value]:
    """The comma-separated list after `option` (-d, -s) in a runner's ARGUMENTS, with its span."""
    match = re.search(rf"(?:^|\s){re.escape(option)}\s+([^\s\"]+)", arguments.text)
    if not match:
        return None
    return Value(match.group(1), arguments.start + match.start(1), arguments.start + match.end(1))

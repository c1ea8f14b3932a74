"""What `one-gluster` prints: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
from typing import Any, Iterable, NamedTuple, Sequence


class Finding(NamedTuple):
    """One line of a check: `status` is ok, note, warn or fail; `fix` the command that fixes it."""

    status: str
    check: str
    found: str
    fix: str = ""


EXIT = {"ok": 0, "note": 0, "warn": 1, "fail": 2}


def exit_code(findings: Sequence[Finding]) -> int:
    """0 all well, 1 warnings, 2 failures: the exit status of every `one-gluster` command."""
    return max((EXIT[f.status] for f in findings), default=0)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Columns aligned; a column empty in every row is left out."""
    rows = [[str(cell) for cell in row] for row in rows]
    keep = [i for i in range(len(headers)) if any(r[i] for r in rows)] or list(range(len(headers)))
    headers, rows = [headers[i] for i in keep], [[r[i] for i in keep] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = [[h.upper() for h in headers], *rows]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def as_json(records: Iterable[NamedTuple], **extra: Any) -> str:
    return json.dumps({**extra, "items": [r._asdict() for r in records]}, indent=2)


def show(records: Sequence[NamedTuple], as_json_output: bool, **extra: Any) -> None:
    """Print `records` (NamedTuples of one type) as a table, or as JSON with `extra` beside them."""
    if as_json_output:
        print(as_json(records, **extra))
    elif records:
        print(table(records[0]._fields, records))

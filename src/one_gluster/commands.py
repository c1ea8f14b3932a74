"""External commands, run through `sh` with argument lists (never a shell string)."""

from __future__ import annotations

import importlib
import os
import shlex
import threading

from .errors import CommandError, DriverError

_ENV = {**os.environ, "LC_ALL": "C"}


def run(program: str, *args: str, what: str = "", timeout: float | None = None, stdin: bytes | None = None) -> str:
    """Run `program args...` (with `stdin` as its input), return its stdout; a failure becomes a
    CommandError with its stderr."""
    import sh  # imported on first use: it costs ~0.1 s, which cheap actions like monitor never pay

    try:
        command = sh.Command(program)
    except sh.CommandNotFound:
        raise DriverError(f"{program} is not installed on this node") from None
    try:
        return str(command(*args, _tty_out=False, _truncate_exc=False, _env=_ENV, _timeout=timeout, _in=stdin))
    except sh.ErrorReturnCode as exc:
        stderr = exc.stderr.decode(errors="replace").strip()
        last = stderr.splitlines()[-1] if stderr else f"exit code {exc.exit_code}"
        raise CommandError(f"{what or program} failed: {last}", quote(program, *args), stderr) from None
    except sh.TimeoutException:
        raise DriverError(f"{what or program} did not finish within {timeout:.0f} s") from None


def preload() -> None:
    """Import `sh` in a background thread: an action that first copies for a while (cp) then finds
    it ready, instead of paying its ~70 ms import after the copy."""
    threading.Thread(target=importlib.import_module, args=("sh",), daemon=True).start()


def quote(*argv: str) -> str:
    """A command line as a person would type it, for log lines only."""
    return " ".join(shlex.quote(str(a)) for a in argv)

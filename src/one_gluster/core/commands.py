"""External commands, run through `sh` with argument lists (never a shell string)."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator, Sequence

from one_gluster.core.errors import CommandError, DriverError

_ENV = {**os.environ, "LC_ALL": "C"}


def run(program: str, *args: str, what: str = "", timeout: float | None = None,
        stdin: bytes | None = None) -> str:
    """Run `program args...` (with `stdin` as its input), return its stdout; a failure becomes a
    CommandError with its stderr."""
    return str(_guarded(what or program, (program, *args), lambda sh: sh.Command(program)(
        *args, _tty_out=False, _truncate_exc=False, _env=_ENV, _timeout=timeout, _in=stdin)))


def pipe(producer: Sequence[str], consumer: Sequence[str], what: str) -> None:
    """`producer | consumer`, streamed (an image can be larger than memory)."""
    def call(sh):
        source = sh.Command(producer[0])(*producer[1:], _piped=True, _bg_exc=False, _truncate_exc=False, _env=_ENV)
        sh.Command(consumer[0])(*consumer[1:], _in=source, _tty_out=False, _truncate_exc=False, _env=_ENV)
        source.wait()                  # the producer's own failure, once the consumer took all it gave
    _guarded(what, (*producer, "|", *consumer), call)


@contextlib.contextmanager
def background(program: str, *args: str, what: str) -> Iterator[Callable[[], bool]]:
    """`program args` running while the block runs, then stopped (TERM); yields a test of whether it
    still runs. A failure to start is reported like `run`'s."""
    process = _guarded(what, (program, *args), lambda sh: sh.Command(program)(
        *args, _bg=True, _bg_exc=False, _truncate_exc=False, _env=_ENV))
    try:
        yield process.is_alive
    finally:
        if process.is_alive():
            process.terminate()
        try:
            process.wait()
        except Exception:               # its exit status after TERM, or a failure the block reported
            pass


def _guarded(what: str, argv: Sequence[str], call: Callable[[Any], Any]) -> Any:
    import sh  # imported on first use: it costs ~0.1 s, which cheap actions like monitor never pay

    try:
        return call(sh)
    except sh.CommandNotFound as exc:
        raise DriverError(f"{exc} is not installed on this node") from None
    except sh.ErrorReturnCode as exc:
        stderr = exc.stderr.decode(errors="replace").strip()
        last = stderr.splitlines()[-1] if stderr else f"exit code {exc.exit_code}"
        raise CommandError(f"{what} failed: {last}", quote(*argv), stderr) from None
    except sh.TimeoutException:
        raise DriverError(f"{what} did not finish in time") from None


def quote(*argv: str) -> str:
    """A command line as a person would type it, for log lines only."""
    import shlex  # here, not at the top: `run` needs it only when a command fails

    return " ".join(shlex.quote(str(a)) for a in argv)

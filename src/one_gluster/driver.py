"""The OpenNebula driver process contract, in one place.

argv and the base64 request in, one result line on stdout, `INFO:`/`ERROR:` lines and one plain
error line on stderr, exit code 0 or 1. No traceback reaches OpenNebula's logs unless
ONE_GLUSTER_DEBUG=yes is set in the driver's environment.
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import sys
from typing import NoReturn, Optional

from one_gluster.core import log, processes
from one_gluster.core.errors import CommandError, DriverError


def _dispatch(kind: str, action: str) -> Optional[str]:
    # Start-up (imports, the request) makes only objects that live as long as the process: the cyclic
    # GC would walk them again and again (~1.2 ms of monitor's ~33). It runs again for the action.
    gc.disable()
    if kind == "datastore":
        from one_gluster.core.ds_request import read_ds_request
        from one_gluster.datastore import action as ds_action

        handler, request = ds_action(action), read_ds_request(sys.argv[1:], sys.stdin.buffer)
    elif kind == "tm":
        from one_gluster.core.tm_request import TmCall
        from one_gluster.tm import action as tm_action

        handler, request = tm_action(action), TmCall(sys.argv[0], tuple(sys.argv[1:]), sys.stdin.buffer)
    else:
        raise DriverError(f"Unknown driver kind {kind!r}")
    gc.freeze()
    gc.enable()
    return handler(request)


def _on_signal(signum: int, _frame: object) -> None:
    """oned's timeout sends TERM to the process group: stop, leaving nothing behind (the children the
    signal missed are killed, the staging files removed) and unwind; but once a result is renamed
    into place, finish and answer (oned would never learn of it)."""
    staging = sys.modules.get("one_gluster.core.staging")
    if staging is not None and staging.committed():
        return
    processes.stop_children()
    if staging is not None:
        staging.abandon()
    raise SystemExit(128 + signum)


def _exit(code: int) -> NoReturn:
    """Flush and leave at once: everything the action opened is closed by now, and the interpreter's
    own teardown (freeing every module: ~7 ms with lxml, ~35 ms with pyone) would only add to the
    wall time oned waits for."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _fail(message: str) -> NoReturn:
    sys.stderr.write(" ".join(message.split()) + "\n")
    _exit(1)


KINDS = {"datastore": "datastore", "tm": "transfer manager"}     # the drivers, as messages name them


def _unexpected(kind: str, action: str, exc: Exception) -> str:
    kind = KINDS.get(kind, kind)
    if isinstance(exc, OSError):     # the system refused: a full volume, a lost mount, permissions
        where = f": {exc.filename}" if exc.filename else ""
        why = ""
        if isinstance(exc, PermissionError) and exc.filename:
            from one_gluster.core.staging import ownership

            why = f" ({ownership(exc.filename)})"
        return f"The {kind} action {action} failed: {exc.strerror or exc}{where}{why}"
    return f"Internal error in {kind} action {action}: {type(exc).__name__}: {exc}"


_NOT_CONNECTED = os.strerror(errno.ENOTCONN)      # what a gluster mount answers when its bricks do not


def _with_cause(message: str, detail: str = "") -> str:
    """`message`, and where the failure was a gluster mount that stopped answering during the action,
    why it did (a lost quorum, no brick left), as the mount guard would have said it."""
    if _NOT_CONNECTED not in message + detail:
        return message
    from one_gluster.core.volume import why_unserved

    why = why_unserved()
    return f"{message.rstrip('.')}. {why}" if why else message


def run(kind: str, action: str) -> NoReturn:
    """Entry point of every executable in drivers/: run `action` of driver `kind` and exit."""
    log.set_action(action)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    debug = os.environ.get("ONE_GLUSTER_DEBUG", "").lower() in ("1", "yes", "true")
    try:
        result = _dispatch(kind, action)
    except CommandError as exc:
        log.error(f'Command "{exc.command}" failed: {exc.detail}')
        _fail(_with_cause(str(exc), exc.detail))
    except DriverError as exc:
        _fail(_with_cause(str(exc)))
    except Exception as exc:  # the last guard: one line for oned, the traceback only when debugging
        if debug:
            import traceback

            traceback.print_exc()
        _fail(_with_cause(_unexpected(kind, action, exc)))
    if result is not None:
        sys.stdout.write(result + "\n")
    _exit(0)

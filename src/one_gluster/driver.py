"""The OpenNebula driver process contract, in one place.

argv and the base64 request in, one result line on stdout, `INFO:`/`ERROR:` lines and one plain
error line on stderr, exit code 0 or 1. No traceback reaches OpenNebula's logs unless
ONE_GLUSTER_DEBUG=yes is set in the driver's environment.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import BinaryIO, NoReturn, Sequence

from . import log
from .errors import CommandError, DriverError, RequestError
from .request import DsRequest, decode_base64_xml


def read_ds_request(args: Sequence[str], stdin: BinaryIO) -> DsRequest:
    """The request of a DS action, in each form oned has used.

    6.8 and later: `<action> <id>` with the base64 request on stdin; 6.4.4-6.6 with -i:
    `<action> - <id>` and stdin; older: `<action> <base64> <id>`.
    """
    if len(args) == 1 or (len(args) >= 2 and args[0] == "-"):
        payload = stdin.read()
    elif len(args) >= 2:
        payload = args[0].encode("ascii", "replace")
    else:
        raise RequestError("Missing arguments: expected the object id, with the base64 request on stdin")
    return DsRequest.from_element(decode_base64_xml(payload))


def _on_signal(signum: int, _frame: object) -> NoReturn:
    # oned's timeout sends TERM to the process group: unwind so that staged files are removed.
    raise SystemExit(128 + signum)


def _fail(message: str) -> NoReturn:
    sys.stderr.write(" ".join(message.split()) + "\n")
    sys.stderr.flush()
    sys.exit(1)


def run(kind: str, action: str) -> NoReturn:
    """Entry point of every executable in drivers/: run `action` of driver `kind` and exit."""
    log.set_action(action)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    debug = os.environ.get("ONE_GLUSTER_DEBUG", "").lower() in ("1", "yes", "true")
    try:
        if kind != "datastore":
            raise DriverError(f"Unknown driver kind {kind!r}")
        from .datastore import action as ds_action

        result = ds_action(action)(read_ds_request(sys.argv[1:], sys.stdin.buffer))
    except CommandError as exc:
        log.error(f'Command "{exc.command}" failed: {exc.detail}')
        _fail(str(exc))
    except DriverError as exc:
        _fail(str(exc))
    except Exception as exc:  # the last guard: one line for oned, the traceback only when debugging
        if debug:
            import traceback

            traceback.print_exc()
        _fail(f"Internal error in {kind} action {action}: {type(exc).__name__}: {exc}")
    if result is not None:
        sys.stdout.write(result + "\n")
    sys.stdout.flush()
    sys.exit(0)

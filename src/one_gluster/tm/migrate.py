"""TM `premigrate`, `postmigrate`, `failmigrate`: live migration on a shared volume moves no data.

As the system datastore's TM, each also runs the same action of the other TMs that the VM's disks
use (OpenNebula's `migrate_other`), with the VM document on stdin and our name as an extra last
argument; called that way by another TM, it has nothing more to do. A failed migration deletes
nothing.
"""

from __future__ import annotations

import os

from .. import log
from ..commands import run
from . import TmCall

USAGE = "SRC_HOST DST_HOST VM_DIR VMID DSID [CALLING_TM]"


def _other_tms(payload: bytes, own: str) -> list[str]:
    """The TM_MADs of the VM's disks other than ours, from the base64 VM document; a name that is not a
    directory beside ours (`../x`, `a/b`) is no driver."""
    from ..xmldoc import decode_base64_xml

    vm = decode_base64_xml(payload, "VM document")
    names = {text.strip() for text in vm.xpath("/VM/TEMPLATE/DISK/TM_MAD/text()")}
    return sorted(n for n in names if n and n != own and "/" not in n and not n.startswith("."))


def _migrate_other(call: TmCall, action: str) -> None:
    call.expect(5, USAGE)
    if len(call.args) >= 6:
        return                       # run by another TM's migrate_other: nothing of ours moves
    payload = call.stdin.read()
    if not payload.strip():
        return
    driver_dir = os.path.dirname(os.path.abspath(call.program))
    own = os.path.basename(driver_dir)
    for tm in _other_tms(payload, own):
        script = os.path.join(os.path.dirname(driver_dir), tm, action)
        if not os.access(script, os.X_OK):
            continue
        log.info(f"Running {action} of the {tm} transfer manager")
        run(script, *call.args[:5], own, stdin=payload, what=f"{action} of the {tm} transfer manager")


def premigrate(call: TmCall) -> None:
    _migrate_other(call, "premigrate")
    log.info(f"VM {call.args[3]} keeps its disks on the shared volume: nothing to copy")
    return None


def postmigrate(call: TmCall) -> None:
    _migrate_other(call, "postmigrate")
    return None


def failmigrate(call: TmCall) -> None:
    _migrate_other(call, "failmigrate")
    log.info(f"Migration of VM {call.args[3]} failed: its directory stays untouched on the shared volume")
    return None

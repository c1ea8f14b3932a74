"""TM `premigrate`, `postmigrate`, `failmigrate`: live migration on a shared volume moves no data.

As the system datastore's TM, each also runs the same action of the other TMs that the VM's disks
use (OpenNebula's `migrate_other`), with the VM document on stdin and our name as an extra last
argument; called that way by another TM, it has nothing more to do. A failed migration deletes
nothing.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from one_gluster.core import log
from one_gluster.core.commands import run
from one_gluster.core.tm_request import TmCall

if TYPE_CHECKING:
    from one_gluster.core.vm import Vm

USAGE = "SRC_HOST DST_HOST VM_DIR VMID DSID [CALLING_TM]"


def _other_tms(vm: Vm, own: str) -> list[str]:
    """The TM_MADs of the VM's disks other than ours; a name that is not a directory beside ours (`../x`,
    `a/b`) is no driver."""
    names = {disk.get("TM_MAD") for disk in vm.disks.values()}
    return sorted(n for n in names if n and n != own and "/" not in n and not n.startswith("."))


def _migrate_other(call: TmCall, action: str) -> None:
    call.expect(5, USAGE)
    if len(call.args) >= 6:
        return                       # run by another TM's migrate_other: nothing of ours moves
    document = call.vm_document()
    if document is None:
        return
    driver_dir = os.path.dirname(os.path.abspath(call.program))
    own = os.path.basename(driver_dir)
    for tm in _other_tms(document.vm, own):
        script = os.path.join(os.path.dirname(driver_dir), tm, action)
        if not os.access(script, os.X_OK):
            continue
        log.info(f"Running {action} of the {tm} transfer manager")
        run(script, *call.args[:5], own, stdin=document.sent, what=f"{action} of the {tm} transfer manager")


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

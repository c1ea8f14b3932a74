"""TM `context`: the contextualization CD-ROM (volume label CONTEXT) built from `context.sh` and the
files the VM template lists (`FILE:name` renames one), written into the VM directory."""

from __future__ import annotations

import os
import shutil
import tempfile

from one_gluster.core import log
from one_gluster.core.commands import run
from one_gluster.core.errors import DriverError, RequestError
from one_gluster.core.staging import Staging
from one_gluster.core.tm_request import TmCall
from one_gluster.tm.placement import system_volume, vm_dir


def _entry(spec: str) -> tuple[str, str]:
    """`path` or `path:name` -> (path, the name it gets on the ISO)."""
    path, sep, name = spec.rpartition(":")
    if not sep or "/" in name:                   # no rename: a colon inside the path, or none at all
        path, name = spec, os.path.basename(spec)
    if not path or not name or name in (".", ".."):
        raise RequestError(f"Invalid context file name in {spec!r}")
    return path, name


def context(call: TmCall) -> None:
    call.expect(4, "CONTEXT_SH [FILE[:NAME] ...] host:DST VMID DSID")
    dst = call.path(-3).require_in_vm(call.number(-2, "VM id"))
    entries = [_entry(spec) for spec in call.args[:-3]]
    vm = vm_dir(dst.path, system_volume(call.number(-1, "datastore id")))
    final = os.path.join(vm.path, os.path.basename(dst.path))
    with tempfile.TemporaryDirectory(prefix="one-gluster-context-") as tree, Staging(final) as staging:
        for path, name in entries:
            if not os.path.exists(path):
                raise DriverError(f"The context file {path} does not exist")
            target = os.path.join(tree, name)
            if os.path.isdir(path):
                shutil.copytree(path, target)
            else:
                shutil.copyfile(path, target)
        temp = staging.temp()
        run("xorriso", "-as", "mkisofs", "-quiet", "-o", temp, "-V", "CONTEXT", "-J", "-R", tree,
            what="Building the context ISO")
        staging.commit(temp)
    log.info(f"Built the context CD-ROM {dst.path} with {', '.join(name for _, name in entries)}")
    return None

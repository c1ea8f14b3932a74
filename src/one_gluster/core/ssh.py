"""Commands on a hypervisor: run here when the host is this machine, else through ssh as oneadmin does."""

from __future__ import annotations

import os
import shlex
import socket

from one_gluster.core.commands import pipe, quote, run
from one_gluster.core.errors import DriverError

SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=15")


def is_local(host: str) -> bool:
    """Whether `host` names this machine (empty, localhost, its hostname, a loopback address)."""
    if host in ("", "localhost", socket.gethostname()):
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):     # UnicodeError: not a name IDNA can encode (a label over 63 characters)
        return False
    return all(a.startswith("127.") or a == "::1" for a in addresses)


def run_on(host: str, program: str, *args: str, what: str = "", stdin: bytes | None = None) -> str:
    """`program args` on `host` (with `stdin` as its input); ssh gets one command line, every argument
    quoted."""
    if _here(host):
        return run(program, *args, what=what, stdin=stdin)
    return run("ssh", *SSH_OPTIONS, host, quote(program, *args), what=what or f"{program} on {host}", stdin=stdin)


def send_file(src: str, host: str, dst: str) -> None:
    """Copy local file `src` to `dst` on `host`, sparse, appearing there only when complete."""
    from one_gluster.core import sparse_copy

    if _here(host):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        sparse_copy.copy_staged(src, dst)
        return
    directory, name = os.path.split(dst)
    partial = f".{name}.part"
    remote = (f"mkdir -p {shlex.quote(directory)} && cd {shlex.quote(directory)} && "
              f"tar -xSf - --transform {shlex.quote('s|.*|' + partial + '|')} && "
              f"mv -f {shlex.quote(partial)} {shlex.quote(name)}")
    pipe(("tar", "-cSf", "-", "-C", os.path.dirname(src), os.path.basename(src)),
         ("ssh", *SSH_OPTIONS, host, remote), what=f"Copying {src} to {host}:{dst}")


def fetch_file(host: str, src: str, dst: str) -> None:
    """Copy `src` on `host` into the new local file `dst` (a staging name), sparse."""
    from one_gluster.core import sparse_copy

    if _here(host):
        sparse_copy.copy_to_new(src, dst)
        return
    remote = quote("tar", "-cSf", "-", "-C", os.path.dirname(src), os.path.basename(src))
    pipe(("ssh", *SSH_OPTIONS, host, remote),
         ("tar", "-xSf", "-", "-C", os.path.dirname(dst), "--transform", f"s|.*|{os.path.basename(dst)}|"),
         what=f"Copying {host}:{src} here")


def _here(host: str) -> bool:
    """Whether `host` is this machine; every command and copy asks this first, so a host that ssh would
    take for one of its options (a leading `-`) is refused here, before anything runs."""
    if host.startswith("-"):
        raise DriverError(f"{host!r} is not a host name")
    return is_local(host)

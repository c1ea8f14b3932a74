"""Commands on a hypervisor: run here when the host is this machine, else through ssh as oneadmin does."""

from __future__ import annotations

import socket

from .commands import quote, run

SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=15")


def is_local(host: str) -> bool:
    """Whether `host` names this machine (empty, localhost, its hostname, a loopback address)."""
    if host in ("", "localhost", socket.gethostname(), socket.getfqdn()):
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return all(a.startswith("127.") or a == "::1" for a in addresses)


def run_on(host: str, program: str, *args: str, what: str = "") -> str:
    """`program args` on `host`; ssh gets one command line, every argument quoted."""
    if is_local(host):
        return run(program, *args, what=what)
    return run("ssh", *SSH_OPTIONS, host, quote(program, *args), what=what or f"{program} on {host}")

"""A loopback web server, for imports from URLs."""

from __future__ import annotations

import http.server
import ssl
import sys
import threading
from pathlib import Path
from typing import Optional


class _Server(http.server.ThreadingHTTPServer):
    """Quiet about a client that went away mid-answer: the kill harness kills downloads on purpose."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            super().handle_error(request, client_address)


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:      # no line per request on stderr
        pass


def serve(directory: Optional[Path], tls: Optional[ssl.SSLContext] = None,
          handler: Optional[type] = None) -> http.server.ThreadingHTTPServer:
    """A loopback HTTP(S) server for `directory` (or answering with `handler`), running until shut down."""
    if handler is None:
        handler = lambda *a, **kw: _Files(*a, directory=str(directory), **kw)
    server = _Server(("127.0.0.1", 0), handler)
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

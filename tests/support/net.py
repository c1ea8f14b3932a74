"""A loopback web server, for imports from URLs."""

from __future__ import annotations

import http.server
import ssl
import threading
from pathlib import Path
from typing import Optional


def serve(directory: Optional[Path], tls: Optional[ssl.SSLContext] = None,
          handler: Optional[type] = None) -> http.server.ThreadingHTTPServer:
    """A loopback HTTP(S) server for `directory` (or answering with `handler`), running until shut down."""
    if handler is None:
        handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(directory), **kw)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

"""Listening on a TCP port for the REST API and ``/metrics``: one place that checks the port
and turns a failed ``bind`` into one line naming the flag, instead of a traceback."""

from __future__ import annotations

import errno
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from coordinator.errors import ConfigError

MAX_PORT = 65535


def check_port(port: int, flag: str) -> int:
    """``port`` if it is a TCP port (0 = any free port); else :class:`ConfigError` naming
    ``flag``. Call it before anything is written, so a typo fails at once."""
    if not 0 <= port <= MAX_PORT:
        raise ConfigError(
            f"{flag} {port}: not a TCP port; expected 0..{MAX_PORT} (0: any free port)"
        )
    return port


def listen_http(
    host: str, port: int, handler: type[BaseHTTPRequestHandler], flag: str
) -> ThreadingHTTPServer:
    """A :class:`ThreadingHTTPServer` bound to ``host:port`` (daemon threads), or a
    :class:`ConfigError` that says why not and which flag to change."""
    check_port(port, flag)
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            why = (
                "the port is already in use (another sluice process on this host?); "
                f"choose another {flag}, or 0 for any free port"
            )
        elif e.errno == errno.EACCES:
            why = "permission denied (ports below 1024 need privileges)"
        elif e.errno == errno.EADDRNOTAVAIL:
            why = f"{host} is not an address of this host"
        else:
            why = e.strerror or str(e)
        raise ConfigError(f"{flag} {port}: cannot listen on {host}:{port}: {why}") from None
    server.daemon_threads = True
    return server

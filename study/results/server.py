"""Serve optuna-dashboard's WSGI app: bind first, say so only once bound, one line when not.

optuna_dashboard.run_server hands its app to bottle.run, which prints "Listening on ..." before
its wsgiref server binds the socket, and lets the bind's OSError out as a traceback. Here the
same wsgiref server (single-threaded, as bottle's) is made first; a host or port it cannot
listen on is a DashboardServerError, one line, and the caller is told the address only after
the socket is bound.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer, make_server
from wsgiref.types import WSGIApplication

from catdog.errors import CatdogError


class DashboardServerError(CatdogError, RuntimeError):
    """The dashboard cannot listen where it was asked to; the message says why and what to do."""


class _IPv6WSGIServer(WSGIServer):
    address_family = socket.AF_INET6


def listen(app: WSGIApplication, host: str, port: int) -> WSGIServer:
    """A wsgiref server for `app`, bound to host:port and listening, or a DashboardServerError."""
    server_class = _IPv6WSGIServer if ":" in host else WSGIServer  # as bottle does for IPv6
    try:
        return make_server(host, port, app, server_class=server_class)
    except (socket.gaierror, UnicodeError):  # UnicodeError: a name IDNA cannot encode
        raise DashboardServerError(
            f"cannot listen on {host!r}: no such host; give --host an address of this machine, "
            "e.g. 127.0.0.1"
        ) from None
    except OSError as error:
        raise DashboardServerError(_bind_problem(error, host, port)) from None


def _bind_problem(error: OSError, host: str, port: int) -> str:
    where = f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: the port is already in use (another dashboard?); "
            "stop that, or choose another --port"
        )
    if error.errno in (errno.EACCES, errno.EPERM):
        below = " (ports below 1024 need root)" if port < 1024 else ""
        return f"cannot listen on {where}: not permitted{below}; choose another --port, e.g. 8080"
    if error.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {where}: {host} is not an address of this machine; give --host "
            "one that is, e.g. 127.0.0.1"
        )
    return f"cannot listen on {where}: {error.strerror or error}"


def base_url(host: str, port: int) -> str:
    """http://host:port, with an IPv6 address in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    app: WSGIApplication, *, host: str, port: int, on_listening: Callable[[str], None]
) -> None:
    """Serve `app` on host:port until Ctrl-C; `on_listening(base URL)` once the socket is bound.

    A host or port it cannot listen on is a DashboardServerError, before on_listening.
    """
    server = listen(app, host, port)
    try:
        on_listening(base_url(host, server.server_port))
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C ends the dashboard, as it ended optuna-dashboard's own server
    finally:
        server.server_close()

"""Several server processes on one port, each with a listening socket of its own.

uvicorn's ``workers=N`` binds one socket in the parent and every process accepts from it. A
process that wakes first accepts every connection waiting (asyncio accepts up to the backlog in
one go), so a few long-lived connections, the usual shape behind a load balancer, all landed in
one process while the other idled: the batch benchmark's four connections ran in one process of
two (issue 19). Here each process binds its own socket with ``SO_REUSEPORT``, and the kernel
spreads new connections over the listening sockets. uvicorn's supervisor is kept as it is (health
checks, restarts, signals): it is handed a :class:`PortPerProcess`, which the parent never binds
and which becomes a new bound socket in each process it is passed to."""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket in the port's ``SO_REUSEPORT`` group."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


class PortPerProcess:
    """Stands for a socket in uvicorn's list of sockets: pickled into a server process (spawn), it
    arrives there as a socket of that process's own, bound with ``SO_REUSEPORT``."""

    def __init__(self, host: str, port: int, backlog: int) -> None:
        self.host, self.port, self.backlog = host, port, backlog

    def __reduce__(self) -> tuple[Any, tuple[str, int, int]]:
        return listening_socket, (self.host, self.port, self.backlog)


def ensure_port_free(host: str, port: int) -> None:
    """Refuse a port another server listens on: without this check a second ``serve`` on the same
    port (same user) would join the group and take a share of the connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))  # OSError "Address already in use" when a server listens


def run_processes(config: uvicorn.Config) -> None:
    """``config.workers`` server processes under uvicorn's supervisor, a socket each (Linux; where
    ``SO_REUSEPORT`` does not spread connections, as on macOS, or is missing, as on Windows, the
    processes share uvicorn's one socket, as they do for port 0: each process would bind a port
    of its own)."""
    if not sys.platform.startswith("linux") or config.port == 0:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    try:
        ensure_port_free(config.host, config.port)
    except OSError as exc:  # as uvicorn answers a port in use: one line, not a traceback
        logging.getLogger("uvicorn.error").error("%s (%s:%d)", exc, config.host, config.port)
        sys.exit(STARTUP_FAILURE)
    placeholder = PortPerProcess(config.host, config.port, config.backlog)
    Multiprocess(config, sockets=[placeholder]).run()  # type: ignore[list-item]

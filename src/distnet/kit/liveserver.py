"""Serve an app on a free loopback port in a background thread (tests, benchmarks, demo)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from litestar import Litestar


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def serve_in_thread(app: Litestar, *, host: str = "127.0.0.1", timeout: float = 20.0) -> Iterator[str]:
    """Yield the base URL while uvicorn serves ``app``; stop it (lifespan included) on exit."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=free_port(host), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

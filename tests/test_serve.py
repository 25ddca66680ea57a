"""``distnet serve --processes N``: several server processes share one port and one database, and
the connections are spread over them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx

from distnet.kit.liveserver import free_port
from tests.factories import register


async def test_serve_with_two_processes(client, admin_headers, database_url, redis_url, settings, tmp_path):
    seller = await register(client, admin_headers, name="seller")
    port = free_port()
    env = {
        **os.environ,
        "DISTNET_DATABASE_URL": database_url,
        "DISTNET_REDIS_URL": redis_url,
        "DISTNET_SECRET_KEY": settings.secret_key.decode(),
        "DISTNET_DATA_DIR": str(tmp_path),
    }
    command = [
        sys.executable,
        "-m",
        "distnet",
        "serve",
        "--port",
        str(port),
        "--processes",
        "2",
        "--no-workers",
    ]
    server = subprocess.Popen(  # noqa: ASYNC220 (started once, waited for below)
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                await asyncio.sleep(0.2)
            answers = [
                await http.post(
                    "/api/v1/orders",
                    headers=admin_headers,
                    json={
                        "external_id": f"served-{i}",
                        "card_number": seller["card"]["number"],
                        "amount": "10.00",
                    },
                )
                for i in range(6)
            ]
            assert [a.status_code for a in answers] == [201] * 6, answers[0].text
            assert (await http.get("/ready")).status_code == 200
        # 32 connections opened at once, each kept for its next request (a load balancer's shape):
        # each process answers a share. With one socket for both processes the first to wake
        # accepted them all ([32] or [1, 31] in 3 of 5 tries); with a socket each, the kernel spreads
        # them (a share below 6 of 32 has a chance of 1 in 10,000 when the spread is even)
        for _ in range(5):
            clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) for _ in range(32)]
            try:
                first = await asyncio.gather(*(c.get("/health") for c in clients))
                again = await asyncio.gather(*(c.get("/health") for c in clients))
            finally:
                await asyncio.gather(*(c.aclose() for c in clients))
            process_of = [a.headers["X-Request-ID"][:16] for a in first]  # the process's prefix (kit/logs)
            assert [a.headers["X-Request-ID"][:16] for a in again] == process_of  # kept connections
            shares = sorted(process_of.count(p) for p in set(process_of))
            assert len(shares) == 2 and shares[0] >= 6, shares
        # a second server on the same port is refused, not given a share of the connections
        second = await asyncio.to_thread(
            subprocess.run,
            command,
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert second.returncode != 0 and b"Address already in use" in second.stdout + second.stderr
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode()
    assert output.count("Started server process") == 2, output[-2000:]

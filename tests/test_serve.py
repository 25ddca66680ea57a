"""``distnet serve --processes N``: several server processes share one port and one database."""

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
    server = subprocess.Popen(  # noqa: ASYNC220 (started once, waited for below)
        [sys.executable, "-m", "distnet", "serve", "--port", str(port), "--processes", "2", "--no-workers"],
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
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode()
    assert output.count("Started server process") == 2, output[-2000:]

"""The guard's key lookup runs in the request's own session and transaction (kit/unit_of_work),
hot statements are prepared, and no path leaves a connection checked out."""

from __future__ import annotations

import time

from sqlalchemy import event, text

from distnet.db import make_engine
from distnet.kit import auth
from tests.conftest import bearer
from tests.factories import register


def _count(engine, name: str) -> list[int]:
    seen: list[int] = []
    event.listen(engine.sync_engine, name, lambda *args: seen.append(1))
    return seen


async def test_key_lookup_and_request_share_one_checkout_and_transaction(client, app, make_key) -> None:
    key = await make_key("admin")
    auth._principal_cache.clear()
    engine = app.state.engine
    checkouts, begins = _count(engine, "checkout"), _count(engine, "begin")
    answer = await client.get("/api/v1/risk/rules", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    assert (len(checkouts), len(begins)) == (1, 1)  # was 2 and 2: the lookup had its own
    assert engine.pool.checkedout() == 0

    # the next request within PRINCIPAL_TTL finds the key in the cache
    checkouts.clear()
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/api/v1/risk/rules", headers=bearer(key))).status_code == 200
    assert len(checkouts) == 1 and engine.pool.checkedout() == 0


async def test_refused_keys_and_handlers_without_a_session_give_the_connection_back(
    client, app, make_key, admin_headers
) -> None:
    engine = app.state.engine
    auth._principal_cache.clear()
    answer = await client.get("/api/v1/risk/rules", headers=bearer("dn_00000000_not-a-key"))
    assert answer.status_code == 401 and answer.headers["content-type"].startswith("application/problem+json")
    assert engine.pool.checkedout() == 0
    # a distributor's key on a staff route: looked up, then refused by the guard (403)
    member = await register(client, admin_headers)
    key = await make_key("distributor", distributor_id=member["id"])
    assert (await client.get("/api/v1/risk/rules", headers=bearer(key))).status_code == 403
    assert engine.pool.checkedout() == 0
    # a bad body is refused after the guard looked the key up, before any handler runs
    admin = await make_key("admin")
    auth._principal_cache.clear()
    answer = await client.post("/api/v1/orders", headers=bearer(admin), content=b"{not json")
    assert answer.status_code == 400
    assert engine.pool.checkedout() == 0


async def test_revoked_key_is_refused_within_the_cache_ttl(client, make_key, sessionmaker) -> None:
    key = await make_key("admin")
    assert (await client.get("/api/v1/risk/rules", headers=bearer(key))).status_code == 200
    async with sessionmaker() as s:  # revoked by another process: this one's cache still has it
        await s.execute(text("UPDATE api_key SET revoked_at = now()"))
        await s.commit()
    digest = auth.hash_key(key)
    expires, principal = auth._principal_cache[digest]
    assert expires - time.monotonic() <= auth.PRINCIPAL_TTL
    auth._principal_cache[digest] = (time.monotonic() - 0.001, principal)  # the TTL passed
    assert (await client.get("/api/v1/risk/rules", headers=bearer(key))).status_code == 401


async def test_statements_are_prepared_from_their_second_run(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            for _ in range(2):
                await conn.execute(text("SELECT count(*) FROM api_key WHERE id > :n"), {"n": 0})
            prepared = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%FROM api_key WHERE id >%'"
                    )
                )
            ).scalar()
            assert prepared == 1
    finally:
        await engine.dispose()

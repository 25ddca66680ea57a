"""Run by test_service in a subprocess: settle partition by partition and, in the middle of
partition number ``stop_after + 1`` (after its money moved, before commit), announce "MID" and wait
to be killed with SIGKILL."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from sqlalchemy.engine import make_url

from distnet.db import make_engine, make_sessionmaker
from distnet.settlement import repository, service


async def main(url: str, as_of: str, partitions: int, stop_after: int) -> None:
    url = (
        make_url(url)
        .update_query_dict({"application_name": "crash_settle"})
        .render_as_string(hide_password=False)
    )
    engine = make_engine(url, pool_size=1)
    original = repository.settle_beneficiaries
    seen = {"n": 0}

    async def settle_then_maybe_hang(session, **kw):
        result = await original(session, **kw)
        if seen["n"] >= stop_after:
            print("MID", flush=True)
            await asyncio.sleep(120)  # the transaction stays open (idle in transaction) until we are killed
        return result

    repository.settle_beneficiaries = settle_then_maybe_hang

    def progress(done: int, total: int) -> None:
        if done:
            seen["n"] = done
            print(f"DONE {done}", flush=True)

    await service.settle(
        make_sessionmaker(engine),
        as_of=datetime.fromisoformat(as_of),
        partitions=partitions,
        on_progress=progress,
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))

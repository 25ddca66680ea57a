"""``distnet settle``: settlement by hand, with a progress bar."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import msgspec
import typer


def settle_command(
    as_of: Annotated[
        datetime | None, typer.Option(help="settle what was due at this time (default now, UTC)")
    ] = None,
    partitions: Annotated[int | None, typer.Option(min=1, max=1024, help="number of partitions")] = None,
) -> None:
    """Run settlement (or resume the unfinished run): due pending commissions become available."""
    from datetime import UTC

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from distnet.db import make_engine, make_sessionmaker, resolve_database_url
    from distnet.settings import get_settings
    from distnet.settlement.schemas import SettlementRunView
    from distnet.settlement.service import settle

    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    settings = get_settings()

    async def main() -> SettlementRunView:
        engine = make_engine(resolve_database_url(settings), pool_size=2)
        try:
            with Progress(
                TextColumn("settlement"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
            ) as bar:
                task = bar.add_task("partitions", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                return await settle(
                    make_sessionmaker(engine),
                    as_of=as_of,
                    partitions=partitions,
                    triggered_by="cli",
                    on_progress=progress,
                )
        finally:
            await engine.dispose()

    result = asyncio.run(main())
    typer.echo(msgspec.json.encode(result).decode())

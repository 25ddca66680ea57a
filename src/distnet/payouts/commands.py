"""``distnet payouts``: bank files out, bank results in."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from distnet.kit.errors import DistnetError, ValidationFailed

payouts_app = typer.Typer(help="payout runs: export bank files, import bank results", no_args_is_help=True)

RESULT_COLUMNS = ("item_id", "status", "reference", "reason", "amount")


def read_results_csv(path: Path) -> list[Any]:
    """Parse a results CSV (header: item_id,status[,reference][,reason][,amount]) into results;
    every bad line is reported at once."""
    from distnet.payouts.schemas import PayoutResult

    problems, results = [], []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = {"item_id", "status"} - set(reader.fieldnames or ())
        if missing:
            raise ValidationFailed(
                f"the file lacks the column(s): {', '.join(sorted(missing))}", field="file"
            )
        for n, row in enumerate(reader, start=2):
            clean = {k: (row.get(k) or "").strip() or None for k in RESULT_COLUMNS}
            try:
                clean["item_id"] = int(clean["item_id"] or "")
                results.append(msgspec.convert(clean, PayoutResult))
            except (ValueError, msgspec.ValidationError) as exc:
                problems.append({"line": n, "problem": str(exc)})
    if problems:
        raise ValidationFailed(
            f"{len(problems)} bad line(s) in {path.name}",
            errors=[{"field": f"line {p['line']}", "message": p["problem"]} for p in problems],
        )
    if not results:
        raise ValidationFailed("the file has no result lines", field="file")
    return results


async def run_of_items(session, item_ids: list[int]) -> int:
    from distnet.payouts import repository as repo

    runs = list(await session.scalars(repo.RUNS_OF_ITEMS, {"ids": item_ids}))
    if len(runs) != 1:
        raise ValidationFailed(
            "the items of a results file must belong to exactly one payout run "
            f"(found {len(runs)}); pass --run",
            field="run",
        )
    return runs[0]


@payouts_app.command("import-results")
def import_results_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    run: Annotated[
        int | None, typer.Option(help="payout run id (default: the run of the file's items)")
    ] = None,
    actor: Annotated[str, typer.Option(help="who imports, for the audit log")] = "cli",
) -> None:
    """Apply a bank results CSV: all lines or none; importing the same file again changes nothing."""
    from distnet.kit.auth import Principal, Role
    from distnet.kit.runner import run_in_session
    from distnet.payouts.service import import_results

    principal = Principal(key_id=None, name=actor, roles=frozenset({Role.finance}))

    async def apply(session, settings):
        results = read_results_csv(file)
        run_id = run if run is not None else await run_of_items(session, [r.item_id for r in results])
        return await import_results(session, principal=principal, run_id=run_id, results=results)

    try:
        report = run_in_session(apply)
    except DistnetError as exc:
        typer.echo(json.dumps(exc.to_problem(), default=str, indent=2), err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(msgspec.to_builtins(report), default=str))


@payouts_app.command("export")
def export_command(
    run: Annotated[int, typer.Argument(help="payout run id")],
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write")],
    file_format: Annotated[str, typer.Option("--format", help="csv or xlsx")] = "csv",
    method: Annotated[
        str | None, typer.Option(help="bank_card, alipay or wechat: that channel's layout")
    ] = None,
    actor: Annotated[str, typer.Option(help="who exports, for the audit log")] = "cli",
) -> None:
    """Write the bank file of an approved (or already exported) run."""
    from distnet.db import make_engine, make_sessionmaker, resolve_database_url, session_scope
    from distnet.kit.auth import Principal, Role
    from distnet.payouts import export
    from distnet.payouts.service import start_export
    from distnet.settings import get_settings

    if file_format not in ("csv", "xlsx"):
        raise typer.BadParameter("csv or xlsx", param_hint="--format")
    if method not in (None, *export.METHODS):
        raise typer.BadParameter("bank_card, alipay or wechat", param_hint="--method")
    settings = get_settings()
    principal = Principal(key_id=None, name=actor, roles=frozenset({Role.finance}))

    async def main() -> None:
        engine = make_engine(resolve_database_url(settings), pool_size=2)
        try:
            sm = make_sessionmaker(engine)
            async with session_scope(sm) as session:
                await start_export(session, principal=principal, run_id=run, fmt=file_format, method=method)
            if file_format == "xlsx":
                stream = export.xlsx_stream(
                    sm, settings.secret_key, run, method, time_zone=settings.business.time_zone
                )
            else:
                stream = export.csv_stream(sm, settings.secret_key, run, method)
            with out.open("wb") as fh:  # noqa: ASYNC230 - a CLI writing its output file
                async for chunk in stream:
                    fh.write(chunk)
        finally:
            await engine.dispose()

    try:
        asyncio.run(main())
    except DistnetError as exc:
        typer.echo(json.dumps(exc.to_problem(), default=str, indent=2), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"wrote {out}")

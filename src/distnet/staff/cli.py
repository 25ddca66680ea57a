"""``distnet staff``: people on the staff and their keys."""

from __future__ import annotations

from typing import Annotated

import typer

staff_app = typer.Typer(help="staff members (people) and their API keys", no_args_is_help=True)


@staff_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="the person's name as shown in the console and audit")],
    role: Annotated[list[str], typer.Option("--role", help="role of their first key; repeat for several")],
) -> None:
    """Create a staff member and their first key; the key is printed once, as the last line."""
    from distnet.kit.runner import run_in_session
    from distnet.staff import service

    async def go(session, settings):
        staff = await service.create_staff(session, name=name)
        key, raw = await service.add_key(session, staff=staff, roles=role)
        return staff.id, key.roles, raw

    staff_id, roles, raw = run_in_session(go)
    typer.echo(f"staff {staff_id} '{name}', key roles: {', '.join(roles)}")
    typer.echo("sign in at /console/login with this key; store it now: it is shown once")
    typer.echo(raw)


@staff_app.command("add-key")
def add_key(
    who: Annotated[str, typer.Argument(help="staff id or exact name")],
    role: Annotated[list[str], typer.Option("--role", help="role; repeat for several")],
) -> None:
    """Another key for the same person (four eyes still sees one person)."""
    from distnet.kit.runner import run_in_session
    from distnet.staff import service

    async def go(session, settings):
        staff = await service.find_staff(session, who=who)
        key, raw = await service.add_key(session, staff=staff, roles=role)
        return staff.name, key.roles, raw

    name, roles, raw = run_in_session(go)
    typer.echo(f"new key for '{name}', roles: {', '.join(roles)}")
    typer.echo("store it now: it is shown once")
    typer.echo(raw)


@staff_app.command("list")
def list_() -> None:
    from distnet.kit.runner import run_in_session
    from distnet.staff import service

    async def go(session, settings):
        return await service.list_staff(session)

    for m in run_in_session(go):
        state = (
            "disabled" if m.disabled else ("second factor enrolled" if m.enrolled else "not signed in yet")
        )
        typer.echo(f"{m.id}\t{m.name}\t{m.keys} key(s)\t{state}")


@staff_app.command("disable")
def disable(who: Annotated[str, typer.Argument(help="staff id or exact name")]) -> None:
    """The person left: every key of theirs stops working."""
    from distnet.kit.runner import run_in_session
    from distnet.staff import service

    async def go(session, settings):
        staff = await service.find_staff(session, who=who)
        await service.disable_staff(session, staff=staff)
        return staff.name

    typer.echo(f"disabled '{run_in_session(go)}'")


def register(app: typer.Typer) -> None:
    app.add_typer(staff_app, name="staff")

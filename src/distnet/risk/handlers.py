"""Internal consumers of outbox events (registered in ``distnet.events.registry``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.events.registry import on
from distnet.risk.checks import check_order
from distnet.risk.holds import lift_settled_debt_holds


@on("order.created", consumer="risk.check_order")
async def check_new_order(session: AsyncSession, event: dict[str, Any]) -> None:
    """Per-order brushing checks within seconds of the order."""
    order_id = event["payload"].get("order_id")
    if order_id is not None:
        await check_order(session, int(order_id))


@on("repayment.received", consumer="risk.debt_repaid")
async def debt_repaid(session: AsyncSession, event: dict[str, Any]) -> None:
    """An unpaid_balance hold lifts itself (cleared) once nothing is owed."""
    distributor_id = event.get("distributor_id") or event["payload"].get("distributor_id")
    if distributor_id is not None:
        await lift_settled_debt_holds(session, distributor_id=int(distributor_id))


@on("commission.available", consumer="risk.debt_netted")
async def debt_netted(session: AsyncSession, event: dict[str, Any]) -> None:
    """Settlement nets debt against newly available money; a debt netted to zero lifts its hold."""
    distributor_id = event.get("distributor_id")
    if distributor_id is not None:
        await lift_settled_debt_holds(session, distributor_id=int(distributor_id))

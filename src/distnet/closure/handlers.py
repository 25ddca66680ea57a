"""A closing account closes when its final payout is paid (outbox consumer of ``payout.paid``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.closure.service import complete_if_paid
from distnet.events.registry import on
from distnet.settings import get_settings


@on("payout.paid", consumer="closure.final_payout")
async def final_payout_paid(session: AsyncSession, event: dict[str, Any]) -> None:
    distributor_id = event.get("distributor_id") or event["payload"].get("distributor_id")
    if distributor_id is not None:
        await complete_if_paid(session, settings=get_settings(), distributor_id=int(distributor_id))

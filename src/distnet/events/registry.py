"""Internal consumers of outbox events. A handler is ``async def h(session, event) -> None`` where
``event`` is ``{"id", "topic", "payload", "distributor_id", "created_at"}``; it runs in its own
transaction, at least once: the dispatcher records ``processed_event(consumer, event_id)`` in the
same transaction, so a redelivered event is dropped.

``topic`` may be exact (``hold.placed``), a family (``hold.*``) or ``*`` (every event); the
dispatcher is events/dispatch.py, fed by the outbox relay (events/relay.py)."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

Handler = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]
HANDLERS: dict[str, list[tuple[str, Handler]]] = {}

# modules whose import registers handlers (kept explicit: a newcomer sees every consumer here)
HANDLER_MODULES = (
    "distnet.events.webhooks",
    "distnet.risk.handlers",
    "distnet.notifications.handlers",
    "distnet.closure.handlers",
)


def on(topic: str, *, consumer: str | None = None) -> Callable[[Handler], Handler]:
    def decorate(fn: Handler) -> Handler:
        name = consumer or f"{fn.__module__}.{fn.__name__}"
        HANDLERS.setdefault(topic, []).append((name, fn))
        return fn

    return decorate


def load_handlers() -> dict[str, list[tuple[str, Handler]]]:
    for module in HANDLER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return HANDLERS

"""The one logging configuration of every distnet process (serve, worker, scheduler, demo), and the
request id.

structlog renders every line, the standard library's included (``logging.getLogger`` stays the way
modules log): JSON lines in production, readable lines on a terminal (``DISTNET_LOG_FORMAT``).
Values bound with :func:`bind` (the request id of the request being served) appear on every line
logged meanwhile, from any module."""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

from distnet.settings import LogSettings, read_section

# Libraries whose INFO lines repeat what distnet logs once, or fire on every periodic run: the
# scheduler's "Running job" every 2 s, dramatiq's "Retrying message" after each webhook failure
# (events/tasks.py logs the failure as one line with its reason).
QUIET = ("apscheduler", "dramatiq.middleware.retries", "httpx")

# plain ASGI types: the CLI imports this module, and must not pay for importing the web framework
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_OPTION = "request_id"
"""The dramatiq message option that carries the request id to the worker (worker/broker.RequestIds)."""
# a caller's id is kept when it is a plain token (a uuid, a trace id); anything else is replaced,
# so that a header cannot inject text into log lines
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _drop_color_message(logger: Any, name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """uvicorn adds its message again with terminal colour codes (``extra={"color_message": ...}``)."""
    event.pop("color_message", None)
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
    _drop_color_message,
]


ACCESS_LOGGER = "uvicorn.access"


class _AccessLineFormatter(logging.Formatter):
    """uvicorn's access line, one per request, as the JSON renderer writes every line (the event,
    what is bound, level, logger, UTC timestamp), without structlog's processor chain: 8 against
    20 µs a line (2026-12-03, in-process)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            **structlog.contextvars.get_contextvars(),
            "event": record.getMessage(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
        }
        return msgspec.json.encode(line, enc_hook=str).decode()


def configure_logging(level: int | None = None, *, settings: LogSettings | None = None) -> None:
    settings = settings or read_section(LogSettings)
    level = level if level is not None else logging.getLevelName(settings.level.upper())
    as_json = settings.format == "json" or (settings.format == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    exceptions: Any = structlog.processors.format_exc_info if as_json else _keep_exc_info
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, exceptions, renderer],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    access = logging.getLogger(ACCESS_LOGGER)
    if as_json:  # the same lines, written by a formatter of their own (the hot path's only line)
        fast = logging.StreamHandler()
        fast.setFormatter(_AccessLineFormatter())
        access.handlers[:], access.propagate = [fast], False
    else:
        access.handlers[:], access.propagate = [], True
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _keep_exc_info(logger: Any, name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return event  # the console renderer prints the traceback itself


def request_id() -> str | None:
    """The id of the request being served (None outside a request)."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


@contextmanager
def bind(**values: Any) -> Iterator[None]:
    """Values on every log line inside the block (restored after it)."""
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


# Request ids of this process: a random prefix and a counter, 32 hex digits like a uuid4's (a
# uuid4 per request was 2% of a ``/health`` request's CPU)
_ID_PREFIX = secrets.token_hex(8)
_ids = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ids) & 0xFFFFFFFFFFFFFFFF:016x}"


def request_id_middleware(app: ASGIApp, done: Callable[[Scope, int, float], None] | None = None) -> Any:
    """Outermost: every request gets an id (the caller's ``X-Request-ID`` when it is a plain
    token, else a new one), on every log line of the request, in its problem responses and in
    the ``X-Request-ID`` response header. ``done(scope, status, started)`` is called when the
    request ends (kit/metrics.record_request): one wrapper of ``send`` for both (each middleware
    layer and ``send`` wrapper costs every request)."""
    header = REQUEST_ID_HEADER.encode()

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        given = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == header), "")
        rid = given if given and _GOOD_ID.match(given) else new_request_id()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != header]
                message = {**message, "headers": [*headers, (header, rid.encode())]}
            await send(message)

        try:
            with bind(request_id=rid):
                await app(scope, receive, send_with_id)
        finally:
            if done is not None:
                done(scope, status, started)

    return middleware

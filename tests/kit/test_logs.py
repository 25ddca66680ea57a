"""Logs: one structlog configuration (JSON lines or readable ones), and a request id that a
client may give (X-Request-ID), gets back, finds in problem responses and on every log line."""

from __future__ import annotations

import json
import logging

import structlog

from distnet.kit.logs import bind, configure_logging, request_id
from distnet.settings import LogSettings


def test_json_lines_carry_the_bound_request_id(capsys) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(settings=LogSettings(format="json"))
        with bind(request_id="req-42"):
            logging.getLogger("distnet.test").warning("hold %s placed", 7)
            structlog.get_logger("distnet.test").info("scan finished", cases=3)
            assert request_id() == "req-42"
        logging.getLogger("distnet.test").warning("outside")
        assert request_id() is None
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["event"], x.get("request_id")) for x in lines] == [
        ("hold 7 placed", "req-42"),
        ("scan finished", "req-42"),
        ("outside", None),
    ]
    assert lines[0]["level"] == "warning" and lines[0]["logger"] == "distnet.test" and lines[1]["cases"] == 3


def test_the_app_keeps_the_one_logging_configuration(capsys, settings) -> None:
    """Creating the app (as each server process does after configure_logging) leaves the root
    handler alone: a served process logs JSON lines with the request id.
    (Litestar's default logging configuration replaced it with its own queue handler and plain
    text format.)"""
    from distnet.app import create_app

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(settings=LogSettings(format="json"))
        ours = root.handlers[:]
        create_app(settings)
        assert root.handlers == ours
        with bind(request_id="req-7"):
            # a line as uvicorn's access log writes it, under a logger of ours (another test's live
            # server may have quietened uvicorn's own loggers)
            logging.getLogger("distnet.test.access").info(
                '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/health", "1.1", 200
            )
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    (line,) = [json.loads(x) for x in capsys.readouterr().err.splitlines() if "/health" in x]
    assert line["request_id"] == "req-7" and line["logger"] == "distnet.test.access"
    assert "GET /health" in line["event"]


async def test_every_response_has_a_request_id_and_problems_name_it(client) -> None:
    resp = await client.get("/api/v1/me")
    assert resp.status_code == 401
    rid = resp.headers["x-request-id"]
    assert len(rid) == 32 and resp.json()["request_id"] == rid
    given = await client.get("/api/v1/me", headers={"X-Request-ID": "trace-7f3a.1"})
    assert given.headers["x-request-id"] == "trace-7f3a.1" and given.json()["request_id"] == "trace-7f3a.1"
    # not a plain token: replaced, so that a header cannot write into the logs
    odd = await client.get("/api/v1/me", headers={"X-Request-ID": "a b\tc" + "x" * 200})
    assert odd.headers["x-request-id"] != "a b\tc" and len(odd.headers["x-request-id"]) == 32
    ok = await client.get("/health")
    assert ok.status_code == 200 and len(ok.headers["x-request-id"]) == 32


def test_the_access_line_is_the_same_json_line(capsys) -> None:
    """uvicorn's access line has a formatter of its own (the one line every request writes): the
    fields of every other JSON line, the bound request id among them."""
    from distnet.kit.logs import ACCESS_LOGGER

    root, access = logging.getLogger(), logging.getLogger(ACCESS_LOGGER)
    saved = root.handlers[:], root.level, access.handlers[:], access.propagate, access.level, access.disabled
    try:
        configure_logging(settings=LogSettings(format="json"))
        # another test's live server may have quietened or disabled uvicorn's loggers
        access.setLevel(logging.INFO)
        access.disabled = False
        with bind(request_id="req-9"):
            access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/health", "1.1", 200)
        logging.getLogger("distnet.test").info("beside it")
    finally:
        root.handlers[:], level, access.handlers[:], access.propagate, access_level, access.disabled = saved
        root.setLevel(level)
        access.setLevel(access_level)
    fast, plain = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert fast["event"] == '127.0.0.1:1 - "GET /health HTTP/1.1" 200' and fast["request_id"] == "req-9"
    assert (fast["level"], fast["logger"]) == ("info", ACCESS_LOGGER)
    assert fast.keys() == plain.keys() | {"request_id"}
    from datetime import datetime

    assert fast["timestamp"].endswith("Z") and plain["timestamp"].endswith("Z")
    assert (
        abs(
            datetime.fromisoformat(plain["timestamp"]) - datetime.fromisoformat(fast["timestamp"])
        ).total_seconds()
        < 5
    )

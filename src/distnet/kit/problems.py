"""Renders every error leaving the API as RFC 9457 problem details: domain errors, framework
errors (validation, unknown route, wrong method, malformed JSON) and, last, unexpected ones."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from distnet.kit.errors import PROBLEM_BASE, DatabaseUnavailable, DistnetError, MalformedJson
from distnet.kit.logs import request_id
from distnet.kit.retry import is_retryable, mark_retryable

log = logging.getLogger("distnet.http")
PROBLEM_JSON = "application/problem+json"

_HTTP_CODES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Request validation failed"),
    429: ("too-many-requests", "Too many requests"),
}


def _problem(status: int, code: str, title: str, detail: str, request: Request, **extra: Any) -> Response:
    body = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
        **extra,
    }
    _with_request_id(body)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=extra.pop("headers", None))


def _with_request_id(body: dict[str, Any]) -> None:
    """The id of the request (kit/logs): a client quoting it finds the request's log lines."""
    rid = request_id()
    if rid is not None:
        body["request_id"] = rid


def domain_error_handler(request: Request, exc: DistnetError) -> Response:
    body = exc.to_problem(request.url.path)
    _with_request_id(body)
    return Response(body, status_code=exc.status, media_type=PROBLEM_JSON, headers=exc.headers or None)


def _validation_errors(exc: ValidationException) -> list[dict[str, Any]]:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            field = item.get("key") or item.get("source") or "body"
            errors.append(
                {
                    "field": str(field),
                    "message": str(item.get("message", exc.detail)),
                    "source": item.get("source", "body"),
                }
            )
    return errors


def http_error_handler(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    detail = str(exc.detail)
    if status == 400 and ("malformed" in detail.lower() or "decode" in detail.lower()):
        return _problem(400, MalformedJson.code, MalformedJson.title, detail, request)
    if isinstance(exc, ValidationException):
        errors = _validation_errors(exc) or [{"field": "body", "message": detail}]
        return _problem(422, "validation-error", "Request validation failed", detail, request, errors=errors)
    code, title = _HTTP_CODES.get(status, ("http-error", "HTTP error"))
    headers = getattr(exc, "headers", None)
    resp = _problem(status, code, title, str(exc.detail), request)
    if headers:
        resp.headers.update(headers)
    return resp


def _unavailable(request: Request, detail: str) -> Response:
    resp = _problem(503, DatabaseUnavailable.code, DatabaseUnavailable.title, detail, request)
    resp.headers["Retry-After"] = "1"
    return resp


def database_error_handler(request: Request, exc: DBAPIError) -> Response:
    """The database went away (restart, failover, network), or refused for a passing reason
    (timeout, lock, deadlock): 503 with Retry-After, so clients retry instead of treating it as
    a bug. Anything else from the database is unexpected (500)."""
    if is_retryable(exc.orig) and mark_retryable(request.scope):
        # kit/retry runs the request's whole unit of work again; this response is not sent
        return _unavailable(request, "the transaction was aborted by the database; retrying")
    if exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
        return _unavailable(request, "the database is unavailable or busy; retry shortly")
    return unexpected_error_handler(request, exc)


def pool_timeout_handler(request: Request, exc: PoolTimeout) -> Response:
    """Every pooled connection stayed busy for the pool's whole timeout."""
    log.warning("no database connection within the pool timeout on %s %s", request.method, request.url.path)
    return _unavailable(request, "every database connection is busy; retry shortly")


def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _problem(
        500, "internal-error", "Internal error", "an unexpected error occurred; it has been logged", request
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DistnetError: domain_error_handler,
    HTTPException: http_error_handler,
    DBAPIError: database_error_handler,
    PoolTimeout: pool_timeout_handler,
    Exception: unexpected_error_handler,
}

__all__ = ["EXCEPTION_HANDLERS", "MediaType"]

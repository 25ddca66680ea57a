"""The one error shape: RFC 9457 problem details with a stable ``code``.

Every domain error derives from :class:`DistnetError`; framework errors (validation, 404 routes,
405, malformed JSON) are rendered in the same shape by :func:`problem_response`.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://distnet.dev/problems/"


class DistnetError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        message: str | None = None,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.title
        self.extra = extra or {}
        self.headers = headers or {}
        super().__init__(self.message)

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.message,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        # extra members never replace the standard ones (a "status" there once made the problem's
        # status a word)
        body.update({k: v for k, v in self.extra.items() if k not in body})
        return body


class ValidationFailed(DistnetError):
    status = 422
    code = "validation-error"
    title = "Request validation failed"

    def __init__(self, message: str, *, field: str | None = None, errors: list[dict] | None = None):
        errs = errors if errors is not None else [{"field": field or "body", "message": message}]
        super().__init__(message, extra={"errors": errs})


class NotFound(DistnetError):
    status = 404
    code = "not-found"
    title = "Not found"


class Unauthorized(DistnetError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


class Forbidden(DistnetError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class Conflict(DistnetError):
    status = 409
    code = "conflict"
    title = "Conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency-conflict"
    title = "Idempotency key reused with a different request"


class MalformedJson(DistnetError):
    """Rendered by the framework's handler (kit/problems) when a body is not JSON."""

    status = 400
    code = "malformed-json"
    title = "Malformed JSON body"


class DatabaseUnavailable(DistnetError):
    """The database went away or refused for a passing reason: retry (``Retry-After``)."""

    status = 503
    code = "database-unavailable"
    title = "Database unavailable"

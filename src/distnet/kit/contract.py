"""The published contract: the shared response types and what turns each route's declaration into
its OpenAPI operation.

A route declares who may call it and which domain problems it can raise in one place::

    @get("/runs/{run_id:int}", opt=roles(Role.finance, raises=[PayoutRunNotFound]))
    async def get_run(...) -> PayoutRun: ...

:func:`publish` (called by ``create_app``) then gives every operation of the document:

- its problem responses as ``application/problem+json`` with the one :class:`Problem` schema, one
  response per status whose ``code`` is the enum of the codes the route can raise. The declared
  ``raises`` classes are joined by the ones every route of that kind can meet: 401 (a bad key,
  even on public routes), 403 (a key without the roles), 422 ``validation-error`` (any parameter
  or body), 400 ``malformed-json`` (a body), 404 ``not-found`` (a path that names no resource, or
  a ``/me`` path called with a key that belongs to no distributor) and 503 ``database-unavailable``;
- the bearer API-key security scheme (public routes: optional);
- the roles that may call it, in the description and as ``x-roles`` (admin passes every guard);
- ``files=[CSV, XLSX]``: the download media types of its success response.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, is_dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar, cast

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.routes import HTTPRoute

from distnet.kit.errors import (
    PROBLEM_BASE,
    DatabaseUnavailable,
    DistnetError,
    Forbidden,
    MalformedJson,
    NotFound,
    Unauthorized,
    ValidationFailed,
)

if TYPE_CHECKING:
    from litestar import Litestar

T = TypeVar("T")

PROBLEM_JSON = "application/problem+json"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SECURITY_SCHEME = "apiKey"

Money = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^-?\d+\.\d{2}$",
        examples=["128.00"],
        description="decimal string with two places, in the currency's major unit",
    ),
]


class ProblemFieldError(msgspec.Struct):
    field: str
    message: str
    source: str | msgspec.UnsetType = msgspec.UNSET


class Problem(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details; ``code`` is stable. Routes add members of their own (``errors``
    for validation, ``reasons`` for a refused closure, ``hold`` for a suspended card)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | msgspec.UnsetType = msgspec.UNSET
    request_id: str | msgspec.UnsetType = msgspec.UNSET
    """The request's id (its ``X-Request-ID``): on every log line of the request."""
    errors: list[ProblemFieldError] | msgspec.UnsetType = msgspec.UNSET


class Page(msgspec.Struct, Generic[T]):
    """A page of a cursor-paginated list; pass ``next_cursor`` back as ``cursor`` (null: the end)."""

    items: list[T]
    next_cursor: str | None


class Items(msgspec.Struct, Generic[T]):
    """A short list returned whole."""

    items: list[T]


def json_or_files(
    view: type, description: str = "As JSON (format=json), CSV or XLSX"
) -> dict[int, ResponseSpec]:
    """``responses=`` of a route whose 200 is ``view`` as JSON or a download (``files=`` in its opt):
    the handler returns ``Response[Any] | Stream``, so the JSON shape is declared here."""
    return {200: ResponseSpec(view, generate_examples=False, description=description)}


@dataclass
class _Operation(Operation):
    x_roles: list[str] | None = field(default=None, metadata={"alias": "x-roles"})


def _problem_example(exc: type[DistnetError]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + exc.code,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.title,
        "code": exc.code,
    }
    if issubclass(exc, ValidationFailed):
        body["errors"] = [{"field": "body", "message": exc.title}]
    return body


def problem_responses(problems: Iterable[type[DistnetError]]) -> dict[str, OpenAPIResponse]:
    by_status: dict[int, dict[str, type[DistnetError]]] = {}
    for exc in problems:
        by_status.setdefault(exc.status, {}).setdefault(exc.code, exc)
    responses = {}
    for status in sorted(by_status):
        codes = by_status[status]
        schema = Schema(
            all_of=[
                Reference(ref="#/components/schemas/Problem"),
                Schema(properties={"status": Schema(const=status), "code": Schema(enum=sorted(codes))}),
            ]
        )
        examples: dict[str, Example | Reference] = {
            code: Example(summary=exc.title, value=_problem_example(exc))
            for code, exc in sorted(codes.items())
        }
        description = f"{HTTPStatus(status).phrase}: " + "; ".join(
            f"`{code}` ({exc.title})" for code, exc in sorted(codes.items())
        )
        responses[str(status)] = OpenAPIResponse(
            description=description,
            content={PROBLEM_JSON: OpenAPIMediaType(schema=schema, examples=examples)},
        )
    return responses


def _route_problems(
    handler: Any, op: Operation, path: str, path_has_params: bool
) -> list[type[DistnetError]]:
    opt = handler.opt
    problems: list[type[DistnetError]] = [Unauthorized, DatabaseUnavailable, *opt.get("raises", ())]
    if not opt.get("public"):
        problems.append(Forbidden)
    if op.parameters or op.request_body:
        problems.append(ValidationFailed)
    if op.request_body:
        problems.append(MalformedJson)
    if path_has_params or path.startswith("/api/v1/me"):
        problems.append(NotFound)
    return problems


def _file_content(media: str) -> OpenAPIMediaType:
    return OpenAPIMediaType(schema=Schema(type=cast(Any, "string"), format=cast(Any, "binary")))


def _describe_roles(handler: Any) -> tuple[str, list[str] | None]:
    if handler.opt.get("public"):
        return "Public: no API key needed.", None
    allowed = sorted({str(r) for r in handler.opt.get("roles", ())} | {"admin"})
    return "Roles: " + ", ".join(f"`{r}`" for r in allowed) + ".", allowed


def _problem_components() -> dict[str, Any]:
    _, components = msgspec.json.schema_components([Problem], ref_template="#/components/schemas/{name}")
    return components


_GENERIC_NAME = re.compile(r"(\w+)_(?:[\w]+\.)+(\w+)_")


def _short_generic_names(openapi: Any) -> None:
    """``Page_distnet.network.schemas.UplineMember_`` -> ``Page_UplineMember`` (names and refs)."""
    schemas = openapi.components.schemas or {}
    renames = {name: f"{m[1]}_{m[2]}" for name in schemas if (m := _GENERIC_NAME.fullmatch(name))}
    if not renames:
        return
    openapi.components.schemas = {renames.get(k, k): v for k, v in schemas.items()}
    prefix = "#/components/schemas/"
    seen: set[int] = set()

    def walk(node: Any) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, Reference):
            name = node.ref.removeprefix(prefix)
            if name in renames:
                node.ref = prefix + renames[name]
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value)
        elif is_dataclass(node):
            for f in fields(node):
                walk(getattr(node, f.name))
            if isinstance(node, Schema) and node.title in renames:
                node.title = renames[node.title]

    walk(openapi)


def publish(app: Litestar) -> None:
    """Completes the app's OpenAPI document from the routes' declarations (see the module doc)."""
    openapi = app.openapi_schema
    openapi.components = openapi.components or Components()
    _short_generic_names(openapi)
    schemas = dict(openapi.components.schemas or {})
    schemas.update(_problem_components())
    openapi.components.schemas = schemas
    openapi.components.security_schemes = {
        SECURITY_SCHEME: SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="API key",
            description="`Authorization: Bearer <api key>`; keys come from `distnet keys create` or registration.",
        )
    }
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in (openapi.paths or {}):
            continue
        path_item = openapi.paths[route.path_format]  # type: ignore[index]
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            for method in handler.http_methods:
                op = getattr(path_item, method.lower(), None)
                if op is None:
                    continue
                completed = _complete(handler, op, route.path_format, bool(route.path_parameters))
                setattr(path_item, method.lower(), completed)


def _complete(handler: Any, op: Operation, path: str, path_has_params: bool) -> _Operation:
    responses = {
        status: r
        for status, r in (op.responses or {}).items()
        if int(status) < 400 or int(status) in (handler.responses or {})
    }
    for status, response in responses.items():
        if int(status) < 300 and isinstance(response, OpenAPIResponse):
            for media in handler.opt.get("files", ()):
                response.content = {**(response.content or {}), media: _file_content(media)}
    for status, response in problem_responses(_route_problems(handler, op, path, path_has_params)).items():
        if int(status) not in (handler.responses or {}):
            responses[status] = response
    roles_text, roles = _describe_roles(handler)
    values = {f.name: getattr(op, f.name) for f in fields(Operation)}
    values["responses"] = responses
    values["description"] = f"{op.description}\n\n{roles_text}" if op.description else roles_text
    values["security"] = [{}, {SECURITY_SCHEME: []}] if handler.opt.get("public") else [{SECURITY_SCHEME: []}]
    return _Operation(**values, x_roles=roles)

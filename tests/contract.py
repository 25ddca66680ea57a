"""The published contract, checked: which operations have a typed success response and their
problem responses (the schema walk), and whether a real response matches its operation's
declared schema (used by the ``client`` fixture on every response of the suite).

``UNCONVERTED`` is the allow-list of operations not yet converted; it shrinks to empty."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

METHODS = ("get", "put", "post", "patch", "delete")
PROBLEM_REF = "#/components/schemas/Problem"
FILE_MEDIA = ("text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "text/plain")
# Fields whose value is free-form by design (an object without declared properties is allowed there)
# (notifications, consents: the personal-data export's copy of other tables' rows, as stored)
FREE_FORM = frozenset(
    {
        "rules",
        "examples",
        "evidence",
        "params",
        "payload",
        "scope",
        "subject",
        "detail",
        "details",
        "data",
        "checks",
        "extra",
        "metadata",
        "attachments",
        "notifications",
        "consents",
        "evidence_summary",
        "rule_params",
        "default",
        # benefits (issue 18): a benefit's value and what a member still misses depend on its kind
        "value",
        "missing",
    }
)

# "METHOD /path" of the operations not yet converted to typed responses; must shrink to empty.
UNCONVERTED: frozenset[str] = frozenset({})


@cache
def openapi_document() -> dict[str, Any]:
    from distnet.app import create_app
    from distnet.settings import DatabaseSettings, RedisSettings, Settings

    settings = Settings(Path("/nonexistent"), b"schema-only", DatabaseSettings(None), RedisSettings(None))
    return create_app(settings).openapi_schema.to_schema()


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def untyped_parts(
    doc: dict[str, Any], schema: dict[str, Any], where: str = "body", seen: frozenset[str] = frozenset()
) -> list[str]:
    """Places in a schema that say nothing about the data: an object without properties, an
    array without item type, or ``{}``; allowed only under a FREE_FORM field name."""
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return []
        return untyped_parts(doc, _resolve(doc, schema), where, seen | {schema["$ref"]})
    problems: list[str] = []
    for key in ("oneOf", "anyOf", "allOf"):
        for i, branch in enumerate(schema.get(key, [])):
            problems += untyped_parts(doc, branch, f"{where}.{key}[{i}]", seen)
    if any(k in schema for k in ("oneOf", "anyOf", "allOf")):
        return problems
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "object" in kinds:
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict) and extra:  # a map with typed values
            problems += untyped_parts(doc, extra, f"{where}{{}}", seen)
        elif not props:
            problems.append(f"{where}: object without properties")
        for name, sub in (props or {}).items():
            if name in FREE_FORM:
                continue
            problems += untyped_parts(doc, sub, f"{where}.{name}", seen)
    elif "array" in kinds:
        if "items" not in schema:
            problems.append(f"{where}: array without item type")
        else:
            problems += untyped_parts(doc, schema["items"], f"{where}[]", seen)
    elif kinds == [None] and not any(k in schema for k in ("enum", "const")):
        problems.append(f"{where}: no type")
    return problems


def contract_gaps(doc: dict[str, Any], name: str, op: dict[str, Any]) -> list[str]:
    """What an operation's published contract lacks."""
    gaps: list[str] = []
    responses = op.get("responses", {})
    success = {s: r for s, r in responses.items() if s.startswith("2")}
    if not success:
        gaps.append("no 2xx response")
    for status, response in success.items():
        content = response.get("content") or {}
        if not content:
            gaps.append(f"{status}: no content")
        for media, body in content.items():
            if media in FILE_MEDIA or media.startswith("text/"):
                continue
            gaps += [f"{status} {media} {p}" for p in untyped_parts(doc, body.get("schema", {}))]
    public = "x-roles" not in op
    needed = {"401", "503"} | (set() if public else {"403"})
    if op.get("parameters") or op.get("requestBody"):
        needed.add("422")
    if op.get("requestBody"):
        needed.add("400")
    gaps += [f"no {s} problem response" for s in sorted(needed - responses.keys())]
    for status, response in responses.items():
        if status[0] in "45" and not (name == "GET /ready" and status == "503"):
            content = response.get("content") or {}
            schema = content.get("application/problem+json", {}).get("schema", {})
            refs = [schema.get("$ref")] + [b.get("$ref") for b in schema.get("allOf", [])]
            if list(content) != ["application/problem+json"] or PROBLEM_REF not in refs:
                gaps.append(f"{status}: not an application/problem+json Problem")
    if not op.get("security"):
        gaps.append("no security requirement")
    if not public and not op["x-roles"]:
        gaps.append("no roles")
    return gaps


# Operations added on main while the contract landed: their problem codes are declared by their
# owners; until then the suite's responses to them are not checked (the fuzz sweep still is).
RESPONSES_UNCHECKED: frozenset[str] = frozenset()


@cache
def _schemathesis_schema() -> Any:
    import schemathesis

    return schemathesis.openapi.from_dict(openapi_document())


def contract_mismatch(response: Any) -> str | None:
    """Why a real (httpx) response breaks its operation's published schema, or None. Operations
    still in UNCONVERTED and paths outside the document (docs, console) are not checked."""
    request = response.request
    schema = _schemathesis_schema()
    operation = schema.find_operation_by_path(request.method, request.url.path)
    if operation is None:
        return None
    name = f"{request.method} {operation.path}"
    if name in UNCONVERTED or name in RESPONSES_UNCHECKED:
        return None
    declared = operation.definition.raw.get("responses", {})
    if str(response.status_code) not in declared:
        return f"{name}: status {response.status_code} is not declared: {response.text[:300]}"
    try:
        operation.validate_response(_as_schemathesis(response))
    except AssertionError as exc:
        return f"{name} -> {response.status_code}: {str(exc)[:1500]}"
    return None


def _as_schemathesis(response: Any) -> Any:
    # built by hand: httpx only knows ``elapsed`` once the response is closed, after the hook
    import requests
    from schemathesis.core.transport import Response

    request = requests.Request(
        method=response.request.method, url=str(response.request.url), headers=dict(response.request.headers)
    ).prepare()
    return Response(
        status_code=response.status_code,
        headers={k: [v] for k, v in response.headers.items()},
        content=response.content,
        request=request,
        elapsed=0.0,
        verify=True,
        message=response.reason_phrase,
        encoding=response.encoding,
    )

"""The OpenAPI document is the contract: every operation has a typed success response, its
problem responses (application/problem+json, one Problem schema, the codes it can raise), the
bearer API-key security scheme and its roles. Real responses are checked against it by the
``client`` fixture (tests/conftest.py) on every request of the suite."""

from __future__ import annotations

from tests.contract import UNCONVERTED, contract_gaps, openapi_document, operations


def test_every_operation_publishes_its_contract():
    doc = openapi_document()
    gaps = {name: contract_gaps(doc, name, op) for name, op in operations(doc)}
    assert len(gaps) >= 60
    missing = {name: g for name, g in gaps.items() if g and name not in UNCONVERTED}
    assert not missing, "operations without their contract (see kit/contract.py):\n" + "\n".join(
        f"{name}: {'; '.join(g)}" for name, g in sorted(missing.items())
    )
    converted = sorted(name for name in UNCONVERTED if name in gaps and not gaps[name])
    assert not converted, (
        f"these operations now publish their contract; remove them from UNCONVERTED: {converted}"
    )
    gone = sorted(UNCONVERTED - gaps.keys())
    assert not gone, f"UNCONVERTED names operations that do not exist: {gone}"


def test_every_operation_declares_its_problem_responses():
    doc = openapi_document()
    for name, op in operations(doc):
        gaps = [g for g in contract_gaps(doc, name, op) if not g.startswith("2")]
        assert not gaps, (name, gaps)


def test_security_scheme_and_problem_schema_are_published():
    doc = openapi_document()
    scheme = doc["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert not [path for path in doc["paths"] if path.startswith(("/console", "/schema"))]


def test_walk_flags_untyped_schemas():
    doc = {
        "components": {
            "schemas": {
                "Loose": {"type": "object", "additionalProperties": {}},
                "Tight": {
                    "type": "object",
                    "properties": {"id": {"type": "integer"}, "evidence": {"type": "object"}},
                },
            }
        }
    }
    op = {
        "responses": {
            "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Loose"}}}}
        },
        "security": [{"apiKey": []}],
        "x-roles": ["admin"],
    }
    gaps = contract_gaps(doc, "GET /x", op)
    assert "200 application/json body: object without properties" in gaps
    assert "no 401 problem response" in gaps and "no 403 problem response" in gaps
    op["responses"]["200"]["content"]["application/json"]["schema"] = {"$ref": "#/components/schemas/Tight"}
    assert not [g for g in contract_gaps(doc, "GET /x", op) if g.startswith("200")]


async def test_docs_page_loads_only_local_assets(client):
    page = await client.get("/schema/swagger")
    assert page.status_code == 200
    html = page.text
    assert "//cdn" not in html and "https://" not in html.split("spec:")[0]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        assert f"/schema/assets/{asset}" in html
        resp = await client.get(f"/schema/assets/{asset}")
        assert resp.status_code == 200 and len(resp.content) > 10_000, asset

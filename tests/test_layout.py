"""The shape of the code (STYLE.md, "Shape"): all SQL of a package lives in its ``repository.py``.

A module under ``src/distnet`` other than a ``repository.py`` fails when one of its string
literals (docstrings aside) holds SQL text: ``INSERT INTO``, ``UPDATE … SET``, ``DELETE FROM`` or
``SELECT … FROM``. ``ALLOWED`` names the modules that still do, each with the reason; it only
shrinks: an entry that no longer matches any offending module fails too, so that it is removed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import distnet

SRC = Path(distnet.__file__).parent

SQL = re.compile(
    r"\bINSERT\s+INTO\b|\bUPDATE\s+(?:ONLY\s+)?[a-z_]+(?:\s+(?:AS\s+)?[a-z_]+)?\s+SET\b|\bDELETE\s+FROM\b"
    r"|\bSELECT\b[\s\S]*?\bFROM\b"
)

ALLOWED: dict[str, str] = {
    # owned by other worktrees this session (issue 14): moved when their split lands
    "orders/": "orders split by concern (worktree perf)",
    "ranks/": "worktree perf",
    "commissions/": "worktree perf",
    "network/": "worktree team",
    "risk/detectors": "detectors split by concern with an explicit scan context (worktree builders)",
    "risk/scan.py": "worktree builders",
    "ledger/service.py": "post()'s one statement, composed by the ledger-posting builder (worktree builders)",
    # the two statement builders every set-based writer composes (issue 14): SQL is what they make
    "ledger/postings.py": "the one builder of ledger-posting CTEs",
    "kit/outbox.py": "the one builder of outbox rows",
    # SQL by nature, or not the application's schema
    "migrations/": "migrations and their SQL files",
    "backup.py": "catalogue queries (pg_tables, alembic_version) on a raw psycopg connection",
    "migrate.py": "alembic_version probe before the schema exists",
    "kit/embedded.py": "pg_database probe of the embedded server",
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal with its line; an f-string as one text, ``{}`` for its fields."""
    skip = _docstrings(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
            skip.update(id(v) for v in node.values)
            out.append((node.lineno, "".join(str(p) for p in parts)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            out.append((node.lineno, node.value))
    return out


def sql_outside_repositories() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "repository.py":
            continue
        lines = [line for line, text in _strings(ast.parse(path.read_text())) if SQL.search(text)]
        if lines:
            found[path.relative_to(SRC).as_posix()] = sorted(lines)
    return found


def _allowed(module: str) -> bool:
    return any(module.startswith(prefix) for prefix in ALLOWED)


def test_the_detector_sees_sql():
    tree = ast.parse(
        'x = "SELECT id FROM t"\ny = f"UPDATE hold SET a = {v}"\nz = "selected from the list"\n'
        'w = "DELETE FROM t"\nv = "INSERT INTO t (a) VALUES (1)"\nu = "UPDATE commission c SET x = 1"\n'
    )
    assert [line for line, text in _strings(tree) if SQL.search(text)] == [1, 2, 4, 5, 6]


def test_sql_lives_in_repositories():
    stray = {module: lines for module, lines in sql_outside_repositories().items() if not _allowed(module)}
    assert not stray, "SQL outside a repository.py (move it into the package's repository.py):\n" + "\n".join(
        f"src/distnet/{module}: lines {lines}" for module, lines in stray.items()
    )


def test_allow_list_only_shrinks():
    offending = sql_outside_repositories()
    stale = sorted(prefix for prefix in ALLOWED if not any(module.startswith(prefix) for module in offending))
    assert not stale, f"no SQL left outside the repository there: remove {stale} from ALLOWED"

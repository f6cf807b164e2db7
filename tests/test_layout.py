"""The shape of the tree: services never import each other; domain code is free of
Kafka, HTTP and SQL; contracts import no service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("intake", "trajectory", "coaching", "reporting")
INFRASTRUCTURE = {"aiokafka", "faststream", "fastapi", "starlette", "uvicorn", "httpx",
                  "sqlite3", "psycopg", "contracts.kafka", "contracts.inbox", "contracts.outbox",
                  "contracts.runtime", "contracts.problems"}


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules(package_dir: Path) -> list[Path]:
    return [p for p in package_dir.rglob("*.py") if "tests" not in p.parts]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service):
    others = set(SERVICES) - {service}
    for path in modules(ROOT / "services" / service / service):
        bad = {m for m in imports(path) if m.split(".")[0] in others}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("service", ["intake", "trajectory", "coaching"])
def test_domain_code_knows_nothing_of_kafka_http_or_sql(service):
    path = ROOT / "services" / service / service / "domain.py"
    bad = {m for m in imports(path) if m in INFRASTRUCTURE or m.split(".")[0] in INFRASTRUCTURE}
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_contracts_import_no_service():
    for path in modules(ROOT / "contracts" / "contracts"):
        bad = {m for m in imports(path) if m.split(".")[0] in SERVICES}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"

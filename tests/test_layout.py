"""The shape of the tree (README, "Architecture"): services never import each other and
contracts import no service; outside the adapters named below, no module of a service or
of contracts knows Kafka, HTTP or SQL; and no module imports the class it is a part of."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("intake", "trajectory", "coaching", "reporting")
CONTRACTS = ROOT / "contracts" / "contracts"

# Packages that talk to the outside world, and the contracts modules that do it for a service.
INFRASTRUCTURE = {"aiokafka", "faststream", "fastapi", "starlette", "uvicorn", "httpx", "sqlite3", "psycopg",
                  "psycopg_pool", "contracts.web", "contracts.runtime", "contracts.kafka", "contracts.inbox",
                  "contracts.outbox", "contracts.deadletters", "contracts.incarnation", "contracts.sidetables",
                  "contracts.processing"}
# Inside contracts the Kafka and SQL modules build on each other; pure modules still never
# reach the HTTP edge, the process runner, or a driver.
CONTRACTS_INFRASTRUCTURE = {"aiokafka", "faststream", "fastapi", "starlette", "uvicorn", "httpx", "sqlite3",
                            "psycopg", "psycopg_pool", "contracts.web", "contracts.runtime"}
RAW_SQL = re.compile(r"\b(CREATE TABLE|SELECT\b.+\bFROM|INSERT INTO|DELETE FROM|UPDATE \w+ SET)\b", re.S)

# The modules that may touch the outside world (dotted, relative to the package), and why.
ADAPTERS: dict[str, dict[str, str]] = {
    "intake": {
        "api": "HTTP",
        "main": "wiring and the process",
        "tables": "SQL side tables (person keys)",
        "registry_files": "the employment registry's file exchange",
        "simulated_registry": "a command-line stand-in for the registry",
    },
    "trajectory": {
        "api": "HTTP",
        "provider_api": "HTTP for providers (signed webhooks in, subscriptions)",
        "delivery": "webhook delivery (HTTP out)",
        "main": "wiring and the process",
        "tables": "SQL side table (webhook secrets)",
    },
    "coaching": {
        "api": "HTTP",
        "webhooks": "HTTP for providers (signed webhooks in)",
        "main": "wiring and the process",
    },
    "reporting": {
        "api": "HTTP",
        "dashboard": "HTTP (the dashboard page)",
        "main": "wiring, the process and the command line",
        "store": "SQL (the read models)",
        "rebuild": "Kafka (rebuilding the read models)",
        "audit": "Kafka (the records its index names, for the auditors)",
    },
    "contracts": {
        "web": "the HTTP edge (FastAPI), every module in it",
        "runtime": "the process runner (uvicorn, FastAPI, Kafka)",
        "kafka": "Kafka", "inbox": "Kafka in", "outbox": "Kafka out", "deadletters": "Kafka",
        "incarnation": "Kafka (topic ids)", "checkpoints": "Kafka (the checkpoint topic)",
        "processing": "SQL (the processing log)", "sidetables": "SQL (rows beside the event store)",
        "lease": "SQL (the once-per-store lease: a PostgreSQL advisory lock)",
    },
}


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from contracts import web`
    return found


def modules(package_dir: Path) -> list[Path]:
    return sorted(p for p in package_dir.rglob("*.py") if "tests" not in p.parts)


def package_dir(package: str) -> Path:
    return CONTRACTS if package == "contracts" else ROOT / "services" / package / package


def dotted(package: str, path: Path) -> str:
    return ".".join(path.relative_to(package_dir(package)).with_suffix("").parts)


def is_adapter(package: str, path: Path) -> bool:
    name = dotted(package, path)
    return any(name == a or name.startswith(f"{a}.") for a in ADAPTERS[package])


def non_adapters(package: str) -> list[Path]:
    return [p for p in modules(package_dir(package)) if not is_adapter(package, p)]


def infrastructure(names: set[str], known: set[str]) -> set[str]:
    found = {m for m in names if any(m == i or m.startswith(f"{i}.") for i in known)}
    return {m for m in found if m.rpartition(".")[0] not in found}  # a module, not also its names


def raw_sql(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {id(body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and (body := node.body) and isinstance(body[0], ast.Expr)
                  and isinstance(body[0].value, ast.Constant)}
    return [node.value[:60] for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            and RAW_SQL.search(node.value)]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service):
    others = set(SERVICES) - {service}
    for path in modules(ROOT / "services" / service / service):
        bad = {m for m in imports(path) if m.split(".")[0] in others}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_contracts_import_no_service():
    for path in modules(CONTRACTS):
        bad = {m for m in imports(path) if m.split(".")[0] in SERVICES}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("service", ["intake", "trajectory", "coaching"])
def test_domain_code_knows_nothing_of_kafka_http_or_sql(service):
    path = ROOT / "services" / service / service / "domain.py"
    bad = {m for m in imports(path) if m in INFRASTRUCTURE or m.split(".")[0] in INFRASTRUCTURE}
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("package", [*SERVICES, "contracts"])
def test_every_adapter_named_exists(package):
    """The list above is the map of each package's edge: it names only what is there."""
    names = {dotted(package, p) for p in modules(package_dir(package))}
    missing = {a for a in ADAPTERS[package] if not any(n == a or n.startswith(f"{a}.") for n in names)}
    assert not missing, f"{package}: ADAPTERS names modules that do not exist: {sorted(missing)}"


@pytest.mark.parametrize("service", SERVICES)
def test_only_adapters_know_kafka_http_or_sql(service):
    found = {}
    for path in non_adapters(service):
        bad = infrastructure(imports(path), INFRASTRUCTURE)
        if bad:
            found[dotted(service, path)] = sorted(bad)
    assert not found, f"{service}: infrastructure outside the adapters {sorted(ADAPTERS[service])}: {found}"


def test_contracts_know_http_only_in_their_adapters():
    found = {}
    for path in non_adapters("contracts"):
        bad = infrastructure(imports(path), CONTRACTS_INFRASTRUCTURE)
        if bad:
            found[dotted("contracts", path)] = sorted(bad)
    assert not found, f"contracts: infrastructure outside the adapters {sorted(ADAPTERS['contracts'])}: {found}"


@pytest.mark.parametrize("package", [*SERVICES, "contracts"])
def test_only_adapters_write_sql(package):
    found = {dotted(package, p): sql for p in non_adapters(package) if (sql := raw_sql(p))}
    assert not found, f"{package}: SQL outside the adapters: {found}"


# --- no module imports the class it is a part of ---------------------------------------


def classes(package: str) -> dict[str, tuple[str, set[str]]]:
    """Every class of the package: name -> (module, the names of its bases)."""
    out: dict[str, tuple[str, set[str]]] = {}
    for path in modules(package_dir(package)):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else b.attr
                         for b in node.bases if isinstance(b, (ast.Name, ast.Attribute))}
                out.setdefault(node.name, (dotted(package, path), bases))
    return out


def ancestors(name: str, known: dict[str, tuple[str, set[str]]]) -> set[str]:
    seen: set[str] = set()
    pending = [name]
    while pending:
        for base in known.get(pending.pop(), ("", set()))[1]:
            if base not in seen:
                seen.add(base)
                pending.append(base)
    return seen


def type_checking_imports(tree: ast.Module) -> list[ast.ImportFrom]:
    """`from ... import ...` inside `if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out += [n for n in ast.walk(node) if isinstance(n, ast.ImportFrom)]
    return out


@pytest.mark.parametrize("package", [*SERVICES, "contracts"])
def test_no_module_imports_the_class_it_is_a_part_of(package):
    """A part of a class (a mixin, a base) never imports the whole back for its types: a
    use case receives what it needs instead."""
    known = classes(package)
    found = []
    for path in modules(package_dir(package)):
        tree = ast.parse(path.read_text())
        here = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
        for node in type_checking_imports(tree):
            if node.level == 0 and (node.module or "").split(".")[0] != package:
                continue
            for alias in node.names:
                parts = here & ancestors(alias.name, known)
                if parts:
                    found.append(f"{dotted(package, path)} imports {alias.name}, of which its "
                                 f"{sorted(parts)} {'is' if len(parts) == 1 else 'are'} a part")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("package", [*SERVICES, "contracts"])
def test_no_method_annotates_self(package):
    """`self: X` is how a mixin claims to be the whole it is mixed into."""
    found = [f"{dotted(package, path)}:{node.lineno} {node.name}(self: {ast.unparse(node.args.args[0].annotation)})"
             for path in modules(package_dir(package))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.args.args
             and node.args.args[0].arg == "self" and node.args.args[0].annotation is not None]
    assert not found, "\n".join(found)


# --- every Kafka client is made in one place -------------------------------------------

KAFKA_CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}
KAFKA_FACTORIES = CONTRACTS / "kafka.py"  # KafkaSecurity and the factories every client comes from


def test_kafka_clients_are_made_only_by_the_factories():
    """How a client connects (security protocol, credentials, CA) is decided in
    `contracts.kafka`: nothing else constructs an aiokafka client (tests and bench may)."""
    packages = [CONTRACTS, ROOT / "infra" / "infra", *(package_dir(s) for s in SERVICES)]
    found = []
    for path in (p for package in packages for p in modules(package) if p != KAFKA_FACTORIES):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                if name in KAFKA_CLIENTS:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}(...)")
    assert not found, "use contracts.kafka's factories instead:\n" + "\n".join(found)

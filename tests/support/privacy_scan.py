"""The end-of-suite scan: no BSN, name or date of birth used in the tests may be found on
any Kafka topic or in any log file the suite produced."""

from __future__ import annotations

import re
from pathlib import Path

from intake.domain import is_valid_bsn

ROOT = Path(__file__).resolve().parents[2]
# Exactly nine digits standing alone: not a piece of a UUID, hash or longer number.
BSN_LIKE = re.compile(r"(?<![0-9A-Za-z_-])\d{9}(?![0-9A-Za-z_-])")


def personal_data_used_in_tests() -> set[str]:
    """Names and dates of birth the tests send to intake, read from their source."""
    found: set[str] = set()
    for path in list(ROOT.glob("tests/**/*.py")) + list(ROOT.glob("services/*/tests/*.py")) + [
            ROOT / "infra" / "infra" / "run.py"]:
        text = path.read_text()
        found |= set(re.findall(r'"name": f?"([^"{]{4,})"', text))
        found |= set(re.findall(r'"date_of_birth": "(\d{4}-\d{2}-\d{2})"', text))
        found |= set(re.findall(r'Person\([\w"]+, "([^"]+)"', text))
        found |= set(re.findall(r'^NAME = "([^"]+)"', text, re.MULTILINE))
        found |= {f"{y}-{int(m):02d}-{int(d):02d}" for y, m, d in re.findall(
            r'Person\([\w"]+, "[^"]+", dt\.date\((\d{4}), (\d+), (\d+)\)\)', text)}
        found |= set(re.findall(r'\("\d{9}", "([^"]+)", "(?:\d{4}-\d{2}-\d{2})"\)', text))
        found |= set(re.findall(r'\("\d{9}", "[^"]+", "(\d{4}-\d{2}-\d{2})"\)', text))
    found.add("Demo Deelnemer")
    # A programme's or provider's name in the tests is public reference data, not a person's.
    public = "".join(p.read_text() for p in ROOT.glob("services/trajectory/trajectory/data/*.toml"))
    return {f for f in found if len(f) >= 4 and f not in public}


def findings(texts: list[tuple[str, str]], secrets: set[str]) -> list[str]:
    """(where, what) for every BSN-like number passing the 11-test, and every secret."""
    problems = []
    for where, text in texts:
        for number in BSN_LIKE.findall(text):
            if is_valid_bsn(number):
                problems.append(f"{where}: a BSN-like number")
        for secret in secrets:
            if secret in text:
                problems.append(f"{where}: personal data used in the tests")
    return problems

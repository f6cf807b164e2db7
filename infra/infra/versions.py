"""Versions of the infrastructure the project runs on, in one place."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

KAFKA_VERSION = "4.1.2"
# The major of Debian 12's `postgresql` package, which the local path installs.
POSTGRES_MAJOR = 15

KAFKA_POM = Path(__file__).resolve().parents[1] / "kafka" / "pom.xml"

_MAVEN_NS = "{http://maven.apache.org/POM/4.0.0}"


def pom_kafka_version(pom: Path = KAFKA_POM) -> str:
    """Return the `kafka.version` property of the pom that fetches the broker."""
    node = ET.parse(pom).getroot().find(f"{_MAVEN_NS}properties/{_MAVEN_NS}kafka.version")
    version = (node.text or "").strip() if node is not None else ""
    if not version:
        raise ValueError(f"{pom} has no kafka.version property")
    return version

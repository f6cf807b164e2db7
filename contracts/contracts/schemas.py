"""JSON Schema for every event in the catalogue, written to `contracts/schemas/`.

The files are committed so that consumers outside Python (the municipal landscape,
providers) can validate what they receive; a test fails when they fall out of date.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from contracts.events import Event

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def schema_of(model: type[Event]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:tweespoor:schema:{model.type}",
        "x-cloudevents-type": model.type,
        **schema,
    }


def render() -> dict[str, str]:
    """File name -> content for every event type."""
    return {
        f"{type_}.json": json.dumps(schema_of(model), indent=2, sort_keys=True) + "\n"
        for type_, model in sorted(Event.catalogue.items())
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=SCHEMA_DIR)
    directory = parser.parse_args().directory
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in render().items():
        (directory / name).write_text(content)
    print(f"wrote {len(Event.catalogue)} schemas to {directory}")

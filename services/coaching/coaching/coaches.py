"""Coaches are roles, not people: "provider:<slug>" for the provider holding the aftercare
("Directe bemiddeling en Nazorg"), "municipality:<name>" for the municipality's own job
coach. The slug is the one credentials and the trajectory service use."""

from __future__ import annotations

import re
import unicodedata

from contracts.providers import PROVIDERS


def provider_slug(name: str) -> str:
    """The provider's slug, from a slug or a display name ("Alexander Calder Reïntegratie")."""
    if name in PROVIDERS:
        return name
    for slug, display in PROVIDERS.items():
        if display.casefold() == name.casefold():
            return slug
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:64] or "unknown"


def provider_coach(provider: str) -> str:
    return f"provider:{provider_slug(provider)}"


def municipality_coach(municipality: str) -> str:
    return f"municipality:{municipality}"

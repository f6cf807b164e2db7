"""The tender's reference data as a file: read, checked, and handed to the store once.

The file seeds the store on the service's first start (see `TenderUseCases.seed`); after
that the store's events are the truth. A file that names an unknown provider,
municipality or discipline, or a contract outside its programme, fails loudly at start.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from contracts.events import ObstacleKind
from contracts.municipalities import MUNICIPALITIES
from contracts.providers import PROVIDERS

DEFAULT_FILE = "tender-2005.toml"
OBSTACLE_KINDS = ObstacleKind.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class BudgetData:
    slug: str
    title: str
    programmes: tuple[str, ...]
    total_eur: int
    sources: dict[str, int]
    shares: dict[str, int]


@dataclass(frozen=True)
class ProgrammeData:
    slug: str
    name: str
    starts_on: dt.date
    ends_on: dt.date
    yearly_volume: int
    municipalities: tuple[str, ...]
    disciplines: tuple[str, ...]
    entry_discipline: str
    reopen_discipline: str
    obstacle_disciplines: dict[str, str] = field(default_factory=dict)
    employer: str | None = None


@dataclass(frozen=True)
class ContractData:
    provider: str
    programme: str
    discipline: str
    municipalities: tuple[str, ...]
    places: int
    tariff_eur: int
    starts_on: dt.date
    ends_on: dt.date


@dataclass(frozen=True)
class TenderData:
    slug: str
    title: str
    source: str  # which file it came from (a name, not a machine path)
    budgets: tuple[BudgetData, ...]
    programmes: tuple[ProgrammeData, ...]
    contracts: tuple[ContractData, ...]

    def programme(self, slug: str) -> ProgrammeData:
        return next(p for p in self.programmes if p.slug == slug)


class TenderFileError(ValueError):
    """The data file does not describe a consistent tender."""


def load(path: str | Path | None = None) -> TenderData:
    """The tender from `path`, or the one shipped with the service."""
    if path is None:
        text = (resources.files("trajectory") / "data" / DEFAULT_FILE).read_text("utf-8")
        return parse(tomllib.loads(text), source=DEFAULT_FILE)
    path = Path(path)
    return parse(tomllib.loads(path.read_text("utf-8")), source=path.name)


def parse(raw: dict[str, Any], *, source: str) -> TenderData:
    try:
        programmes = tuple(_programme(p) for p in raw["programme"])
        by_slug = {p.slug: p for p in programmes}
        tender = TenderData(
            slug=raw["tender"]["slug"], title=raw["tender"]["title"], source=source,
            budgets=tuple(_budget(b, by_slug) for b in raw.get("budget", ())),
            programmes=programmes,
            contracts=tuple(_contract(c, by_slug) for c in raw.get("contract", ())),
        )
    except KeyError as missing:
        raise TenderFileError(f"{source}: missing {missing}") from None
    _check_unique(tender)
    return tender


def _programme(raw: dict[str, Any]) -> ProgrammeData:
    programme = ProgrammeData(
        slug=raw["slug"], name=raw["name"], starts_on=raw["starts_on"], ends_on=raw["ends_on"],
        yearly_volume=int(raw["yearly_volume"]),
        municipalities=_municipalities(raw["municipalities"], raw["slug"]),
        disciplines=tuple(raw["disciplines"]), entry_discipline=raw["entry_discipline"],
        reopen_discipline=raw.get("reopen_discipline", raw["entry_discipline"]),
        obstacle_disciplines=dict(raw.get("obstacle_disciplines", {})),
        employer=raw.get("employer"),
    )
    named = {programme.entry_discipline, programme.reopen_discipline,
             *programme.obstacle_disciplines.values()}
    if unknown := named - set(programme.disciplines):
        raise TenderFileError(f"programme {programme.slug}: unknown disciplines {sorted(unknown)}")
    if unknown := set(programme.obstacle_disciplines) - set(OBSTACLE_KINDS):
        raise TenderFileError(f"programme {programme.slug}: unknown obstacle kinds {sorted(unknown)}")
    if programme.ends_on < programme.starts_on or programme.yearly_volume < 0:
        raise TenderFileError(f"programme {programme.slug}: period or volume makes no sense")
    return programme


def _contract(raw: dict[str, Any], programmes: dict[str, ProgrammeData]) -> ContractData:
    programme = programmes.get(raw["programme"])
    where = f"contract {raw['provider']}/{raw['programme']}/{raw['discipline']}"
    if programme is None:
        raise TenderFileError(f"{where}: unknown programme")
    if raw["provider"] not in PROVIDERS:
        raise TenderFileError(f"{where}: unknown provider")
    if raw["discipline"] not in programme.disciplines:
        raise TenderFileError(f"{where}: the programme has no such discipline")
    municipalities = _municipalities(raw["municipalities"], where)
    if outside := set(municipalities) - set(programme.municipalities):
        raise TenderFileError(f"{where}: the programme does not run in {sorted(outside)}")
    contract = ContractData(
        provider=raw["provider"], programme=programme.slug, discipline=raw["discipline"],
        municipalities=municipalities, places=int(raw["places"]), tariff_eur=int(raw["tariff_eur"]),
        starts_on=raw.get("starts_on", programme.starts_on),
        ends_on=raw.get("ends_on", programme.ends_on),
    )
    if contract.places < 0 or contract.tariff_eur < 0 or contract.ends_on < contract.starts_on:
        raise TenderFileError(f"{where}: places, tariff or period makes no sense")
    return contract


def _budget(raw: dict[str, Any], programmes: dict[str, ProgrammeData]) -> BudgetData:
    budget = BudgetData(
        slug=raw["slug"], title=raw["title"], programmes=tuple(raw["programmes"]),
        total_eur=int(raw["total_eur"]),
        sources={k: int(v) for k, v in raw.get("sources", {}).items()},
        shares={k: int(v) for k, v in raw.get("shares", {}).items()},
    )
    if unknown := set(budget.programmes) - set(programmes):
        raise TenderFileError(f"budget {budget.slug}: unknown programmes {sorted(unknown)}")
    _municipalities(list(budget.shares), f"budget {budget.slug}")
    for part in ("sources", "shares"):
        if (amounts := getattr(budget, part)) and sum(amounts.values()) != budget.total_eur:
            raise TenderFileError(f"budget {budget.slug}: {part} do not add up to the total")
    return budget


def _municipalities(names: list[str], where: str) -> tuple[str, ...]:
    if unknown := set(names) - set(MUNICIPALITIES):
        raise TenderFileError(f"{where}: unknown municipalities {sorted(unknown)}")
    return tuple(names)


def _check_unique(tender: TenderData) -> None:
    lots = [(c.provider, c.programme, c.discipline) for c in tender.contracts]
    if len(lots) != len(set(lots)):
        raise TenderFileError("a provider holds the same discipline twice: merge the contracts")
    covered = [p for b in tender.budgets for p in b.programmes]
    if len(covered) != len(set(covered)):
        raise TenderFileError("a programme is paid from two budgets")

"""The tender's reference data: seeded from the data file on the first start, read by the
other use cases, changed only through audited commands, each recorded with who made it
and why."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from contracts.access import Principal
from contracts.chain import IntegrityViolation
from contracts.problems import Conflict, Invalid, NotFound
from trajectory.contracting import (
    ContractError, DisciplineCapacity, Lot, Programme, ProviderContract, Register, available,
    validate_award,
)
from trajectory.tender import TenderData
from trajectory.usecases import Write
from trajectory.views import contract_view, programme_view

log = logging.getLogger(__name__)


class ReferenceData:
    """Programmes, contracts and capacity: lookups the other use cases share, the views of
    them, and the audited changes."""

    def __init__(self, app: Any, write: Write) -> None:
        self.app, self._write = app, write

    def seed(self, tender: TenderData) -> bool:
        """Loads the tender into an empty store; a store that has one keeps its own."""
        if Register.create_id() in self.app.repository:
            return False
        register = Register(slug=tender.slug, title=tender.title, source=tender.source,
                            budgets=[_budget(b) for b in tender.budgets], by="seed")
        changed: list[Any] = [register]
        for p in tender.programmes:
            changed.append(Programme(
                p.slug, name=p.name, starts_on=p.starts_on, ends_on=p.ends_on,
                yearly_volume=p.yearly_volume, municipalities=list(p.municipalities),
                disciplines=list(p.disciplines), entry_discipline=p.entry_discipline,
                reopen_discipline=p.reopen_discipline, obstacle_disciplines=p.obstacle_disciplines,
                employer=p.employer, by="seed"))
            register.register_programme(p.slug)
        for c in tender.contracts:
            contract = ProviderContract(
                c.provider, c.programme, c.discipline, municipalities=list(c.municipalities),
                starts_on=c.starts_on, ends_on=c.ends_on, places=c.places, tariff_eur=c.tariff_eur,
                reason=f"awarded in the tender ({tender.source})", by="seed")
            register.register_contract(contract.id, c.programme, c.discipline)
            changed.append(contract)
        try:
            self.app.save(*changed)
        except IntegrityError:  # another process seeded it a moment ago
            return False
        log.info("tender_seeded", extra={"tender": tender.slug, "programmes": len(tender.programmes),
                                         "contracts": len(tender.contracts)})
        return True

    # --- lookups the other use cases share ----------------------------------------------

    def register(self) -> Register:
        return self.app.repository.get(Register.create_id())

    def reference_streams(self) -> list[uuid.UUID]:
        """Every stream of the reference data, for the audit (`contracts.audit`): the
        register (tender and budgets), each programme, each contract and each discipline's
        capacity. A register that fails its check names only itself: the audit says where."""
        ids = [Register.create_id()]
        try:
            register = self.register()
        except (IntegrityViolation, AggregateNotFoundError):
            return ids
        ids += [Programme.create_id(slug) for slug in register.programmes]
        for key, contracts in sorted(register.lots.items()):
            programme, discipline = key.split("|", 1)
            ids += [*(uuid.UUID(str(c)) for c in contracts), DisciplineCapacity.create_id(programme, discipline)]
        return ids

    def programme(self, slug: str) -> Programme:
        try:
            return self.app.repository.get(Programme.create_id(slug))
        except AggregateNotFoundError:
            raise NotFound("Programme") from None

    def lots(self, programme: str, discipline: str) -> list[Lot]:
        ids = self.register().contracts_for(programme, discipline)
        return [self.app.repository.get(i).lot for i in ids]

    def lots_on(self, programme: str, discipline: str) -> Callable[[str, dt.date], tuple[list[Lot], str | None]]:
        """`available` bound to one discipline's lots, as capacity decisions ask for it."""
        lots = self.lots(programme, discipline)
        return lambda municipality, on: available(lots, municipality, on)

    def capacity(self, programme: str, discipline: str) -> DisciplineCapacity:
        try:
            return self.app.repository.get(DisciplineCapacity.create_id(programme, discipline))
        except AggregateNotFoundError:
            return DisciplineCapacity(programme, discipline)

    def contract(self, contract_id: uuid.UUID) -> ProviderContract:
        try:
            contract = self.app.repository.get(contract_id)
        except AggregateNotFoundError:
            contract = None
        if not isinstance(contract, ProviderContract):
            raise NotFound("Contract")
        return contract

    # --- reads ---------------------------------------------------------------------------

    def programmes_view(self) -> dict[str, Any]:
        register = self.register()
        programmes = [self.programme(slug) for slug in register.programmes]
        return {
            "tender": {"slug": register.slug, "title": register.title, "source": register.source},
            "programmes": [programme_view(p, register) for p in programmes],
            "budgets": [self._budget_view(b) for b in register.budgets],
        }

    def contracts_view(self, caller: Principal) -> list[dict[str, Any]]:
        """Every lot; a provider sees its own."""
        register = self.register()
        contracts = [self.contract(uuid.UUID(i)) for ids in register.lots.values() for i in ids]
        return [contract_view(c, self.capacity(c.programme, c.discipline)) for c in contracts
                if caller.kind != "provider" or c.provider == caller.provider]

    def contract_view(self, contract_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        contract = self.contract(contract_id)
        if caller.kind == "provider" and contract.provider != caller.provider:
            raise NotFound("Contract")
        view = contract_view(contract, self.capacity(contract.programme, contract.discipline))
        return view | {"changes": contract.changes}

    def capacity_view(self, caller: Principal) -> list[dict[str, Any]]:
        """Per discipline: places, in use and waiting; a municipality sees which of its own
        trajectories wait (counts only for the others)."""
        register = self.register()
        views = []
        for key in register.lots:
            programme, discipline = key.split("|", 1)
            capacity = self.capacity(programme, discipline)
            lots = self.lots(programme, discipline)
            waiting = capacity.waiting
            view: dict[str, Any] = {
                "programme": programme, "discipline": discipline,
                "places": sum(lot.places for lot in lots),
                "in_use": sum(capacity.in_use(lot.provider) for lot in lots),
                "waiting": len(waiting),
            }
            if caller.kind == "municipality":
                view["waiting_here"] = [{"trajectory_id": w["trajectory_id"], "since": w["since"]}
                                        for w in waiting if w["municipality"] == caller.municipality]
            views.append(view)
        return views

    def _budget_view(self, budget: dict[str, Any]) -> dict[str, Any]:
        """The budget and what assignments so far commit of it, per municipality."""
        committed: dict[str, int] = {}
        register = self.register()
        for key, ids in register.lots.items():
            programme, discipline = key.split("|", 1)
            if programme not in budget["programmes"]:
                continue
            capacity = self.capacity(programme, discipline)
            for contract_id in ids:
                contract = self.contract(uuid.UUID(contract_id))
                for municipality, count in capacity.assigned.get(contract.provider, {}).items():
                    committed[municipality] = committed.get(municipality, 0) + count * contract.tariff_eur
        return budget | {"committed_eur": sum(committed.values()),
                         "committed_per_municipality_eur": committed}

    # --- audited changes -----------------------------------------------------------------

    def award_contract(self, *, provider: str, programme: str, discipline: str,
                       municipalities: list[str], starts_on: dt.date, ends_on: dt.date, places: int,
                       tariff_eur: int, reason: str, by: str) -> dict[str, Any]:
        def command() -> dict[str, Any]:
            known = self.programme(programme)
            with _invalid_fields():
                if discipline not in known.disciplines:
                    raise ContractError("discipline", "is not a discipline of the programme")
                if outside := set(municipalities) - set(known.municipalities):
                    raise ContractError("municipalities", f"the programme does not run in {sorted(outside)}")
                validate_award(starts_on, ends_on, places, tariff_eur)
            contract_id = ProviderContract.create_id(provider, programme, discipline)
            if contract_id in self.app.repository:
                raise Conflict("Contract exists",
                               "This provider already holds this discipline; change its places.",
                               existing=f"/contracts/{contract_id}")
            contract = ProviderContract(provider, programme, discipline,
                                        municipalities=list(dict.fromkeys(municipalities)),
                                        starts_on=starts_on, ends_on=ends_on, places=places,
                                        tariff_eur=tariff_eur, reason=reason, by=by)
            register = self.register()
            register.register_contract(contract.id, programme, discipline)
            self.app.save(contract, register)
            log.info("contract_awarded", extra={"contract": str(contract.id), "by": by})
            return contract_view(contract, self.capacity(programme, discipline))

        return self._write(command)

    def change_places(self, contract_id: uuid.UUID, *, places: int, on: dt.date, reason: str,
                      by: str) -> dict[str, Any]:
        return self._change(contract_id, lambda c: c.change_places(places, on, reason, by),
                            "contract_places_changed", by)

    def extend_contract(self, contract_id: uuid.UUID, *, ends_on: dt.date, reason: str,
                        by: str) -> dict[str, Any]:
        return self._change(contract_id, lambda c: c.extend(ends_on, reason, by), "contract_extended", by)

    def _change(self, contract_id: uuid.UUID, change: Callable[[ProviderContract], None], logged: str,
                by: str) -> dict[str, Any]:
        def command() -> dict[str, Any]:
            contract = self.contract(contract_id)
            with _invalid_fields():
                change(contract)
            self.app.save(contract)
            log.info(logged, extra={"contract": str(contract_id), "by": by})
            return contract_view(contract, self.capacity(contract.programme, contract.discipline))

        return self._write(command)

    def change_volume(self, slug: str, *, yearly_volume: int, on: dt.date, reason: str,
                      by: str) -> dict[str, Any]:
        def command() -> dict[str, Any]:
            programme = self.programme(slug)
            with _invalid_fields():
                programme.change_volume(yearly_volume, on, reason, by)
            self.app.save(programme)
            log.info("programme_volume_changed", extra={"programme": slug, "by": by})
            return programme_view(programme, self.register())

        return self._write(command)


@contextmanager
def _invalid_fields() -> Iterator[None]:
    """A ContractError refused as Invalid, naming the field (never the value sent)."""
    try:
        yield
    except ContractError as error:
        raise Invalid.field(error.field, error.reason) from None


def _budget(b: Any) -> dict[str, Any]:
    return {"slug": b.slug, "title": b.title, "programmes": list(b.programmes),
            "total_eur": b.total_eur, "sources_eur": dict(b.sources), "shares_eur": dict(b.shares)}

"""The employment registry exchange: request files for the follow-up points due, the files
kept rendered again, and answer files imported all or nothing. The registry itself is a
port (`intake.registry.EmploymentRegistry`): files out and back."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from contracts.access import Principal
from contracts.commands import retries_on_conflict
from contracts.problems import Forbidden, Invalid, NotFound
from intake.config import IntakeConfig
from intake.domain import Referral, client_pseudonym
from intake.lbu import JobOffer
from intake.privacy import Vault
from intake.registry import (
    LBU_COHORT, PLACED_COHORT, AnswerLine, EmploymentRegistry, FollowUp, LineError, RegistryRequest,
    RequestLine, due_points,
)
from intake.registry_files import write_answers, write_request
from intake.usecases.stored import loaded_if, loaded_or_new, originators
from intake.views import registry_summary

Cohort = list[tuple[Any, str, dt.date, uuid.UUID | None]]


class EmploymentRegistryExchange:
    def __init__(self, store: Any, *, config: IntakeConfig, vault: Vault, registry: EmploymentRegistry,
                 clock: Callable[[], dt.date]) -> None:
        self.store, self.config, self.vault, self.clock = store, config, vault, clock
        self.registry = registry

    @retries_on_conflict("registry request")
    def build_registry_request(self, caller: Principal, *, municipality: str,
                               on: dt.date) -> tuple[dict[str, Any], bytes] | None:
        """The request file for every follow-up point of the municipality's cohorts reached
        on or before `on` and not asked about yet; None when none is due. Erased people are
        left out. The file is returned, not kept: see `registry_file`."""
        if not caller.sees_municipality(municipality):
            raise Forbidden(detail="A municipality follows only its own clients.")
        if on > self.clock():
            raise Invalid.field("on", "must not be in the future", detail="The date must not be after today.")
        lines: list[dict[str, Any]] = []
        asked: list[RequestLine] = []
        follow_ups: list[tuple[FollowUp, list[str]]] = []
        for source, cohort, reference, offer_id in self._cohorts(municipality):
            follow_up = loaded_or_new(self.store.repository, FollowUp.create_id(source.id),
                                      lambda s=source: FollowUp(s.id))
            points = [(p, m, d) for p, m, d in due_points(cohort, reference, on)
                      if FollowUp.key(p, reference) not in follow_up.requested]
            person = self.vault.open(source.client_id, source.sealed_person) if points else None
            if person is None:
                continue  # nothing due, or erased: never asked about again
            for point, months, observe_on in points:
                line = len(lines) + 1
                lines.append({"line": line, "client_id": str(source.client_id),
                              "source_id": str(source.id), "trajectory_id": str(source.trajectory_id),
                              "offer_id": str(offer_id) if offer_id else None, "cohort": cohort,
                              "point": point, "months_after": months,
                              "reference_date": reference.isoformat(), "observe_on": observe_on.isoformat()})
                asked.append(RequestLine(line, person.bsn, point, reference, observe_on))
            follow_ups.append((follow_up, [FollowUp.key(p, reference) for p, _, _ in points]))
        if not lines:
            return None
        request = RegistryRequest(municipality=municipality, built_on=self.clock(), on=on, lines=lines)
        for follow_up, keys in follow_ups:
            follow_up.requested_in(request.id, keys)
        self.store.save(request, *(f for f, _ in follow_ups))
        return registry_summary(request), self.registry.request(request.id, asked)

    def _cohorts(self, municipality: str) -> Cohort:
        """(referral or offer, cohort, reference date, offer id): the unknown-destination
        cohort from the refusal, placed clients from their latest placement."""
        repository, found = self.store.repository, []
        for offer_id in originators(self.store, JobOffer.DestinationUnknown):
            offer: JobOffer = repository.get(offer_id)
            if offer.municipality == municipality and offer.state == "destination-unknown":
                refused = [entry[1] for entry in offer.history if entry[0] == "refused"]
                found.append((offer, LBU_COHORT, refused[-1], offer.id))
        for referral_id in originators(self.store, Referral.TrajectoryPlaced):
            referral: Referral = repository.get(referral_id)
            placed = [entry[1] for entry in referral.history if entry[0] == "placed"]
            if referral.municipality == municipality and placed:
                found.append((referral, PLACED_COHORT, max(placed), None))
        return found

    def registry_request(self, request_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        return registry_summary(self._request_for(request_id, caller))

    def _request_for(self, request_id: uuid.UUID, caller: Principal) -> RegistryRequest:
        request = loaded_if(self.store.repository, request_id, RegistryRequest)
        if request is None or not caller.sees_municipality(request.municipality):
            raise NotFound("Registry request")
        return request

    def registry_file(self, request_id: uuid.UUID, caller: Principal, kind: str) -> bytes:
        """A kept file, rendered again: the request, or the answers imported so far. The
        BSN is read from the person's sealed data, so an erased person's is empty."""
        request = self._request_for(request_id, caller)
        bsns = {n: self._bsn_of(line) for n, line in request.lines.items()}
        if kind == "request":
            return write_request(request.id, [
                RequestLine(n, bsns[n], line["point"], dt.date.fromisoformat(line["reference_date"]),
                            dt.date.fromisoformat(line["observe_on"]))
                for n, line in sorted(request.lines.items())])
        return write_answers([
            AnswerLine(0, request.id, n, bsns[n], a["employed"], a["employer_id"], a["hours_per_week"],
                       dt.date.fromisoformat(a["period_start"]), dt.date.fromisoformat(a["period_end"]),
                       a["on_benefit"], a["benefit_kind"])
            for n, a in sorted(request.answers.items())])

    def _bsn_of(self, line: dict[str, Any]) -> str:
        source = loaded_if(self.store.repository, uuid.UUID(line["source_id"]), object)
        if source is None:
            return ""
        person = self.vault.open(source.client_id, source.sealed_person)
        return person.bsn if person else ""

    @retries_on_conflict("registry request")
    def import_registry_answers(self, caller: Principal, file: bytes) -> dict[str, Any]:
        """Imports an answer file all or nothing. Every row is checked first (against its
        request line: the request, the line, the person, the period); if any is wrong,
        nothing is recorded and the error names every row and field. A row already
        imported with the same values is skipped, so importing a file twice records
        nothing the second time."""
        parsed = self.registry.answers(file)
        errors: list[LineError] = list(parsed.errors)
        if parsed.rows == 0 and not errors:
            errors.append(LineError(1, "file", "has no answer rows"))
        requests: dict[uuid.UUID, RegistryRequest | None] = {}
        new: dict[uuid.UUID, list[dict[str, Any]]] = {}
        seen: set[tuple[uuid.UUID, int]] = set()
        report = []
        for x in parsed.lines:
            if x.request_id not in requests:
                try:
                    requests[x.request_id] = self._request_for(x.request_id, caller)
                except NotFound:
                    requests[x.request_id] = None
            request = requests[x.request_id]

            def wrong(field: str, reason: str, row: int = x.row, line: int = x.line) -> None:
                errors.append(LineError(row, field, reason, line))

            if request is None:
                wrong("request_id", "no such request")
                continue
            spec = request.lines.get(x.line)
            if spec is None:
                wrong("line", "not a line of this request")
                continue
            if (x.request_id, x.line) in seen:
                wrong("line", "answered twice in this file")
                continue
            seen.add((x.request_id, x.line))
            if str(client_pseudonym(x.bsn, self.config.pseudonym_key)) != spec["client_id"]:
                wrong("bsn", "does not match the person of this request line")
                continue
            observe_on = dt.date.fromisoformat(spec["observe_on"])
            if not x.period_start <= observe_on <= x.period_end:
                wrong("period_start", "the period must contain the date the line asks about "
                                      "(observe_on of the request line)")
                continue
            previous = request.answers.get(x.line)
            if previous is not None and previous != x.values():
                wrong("line", "already imported with other values")
                continue
            status = "already-imported" if previous is not None else "imported"
            if previous is None:
                new.setdefault(request.id, []).append({"line": x.line, **x.values()})
            report.append({"row": x.row, "request_id": str(x.request_id), "line": x.line, "status": status})
        if errors:
            errors.sort(key=lambda e: (e.row, e.field))
            rows = len({e.row for e in errors})
            raise Invalid([e.as_dict() for e in errors[:1000]], title="Answer file rejected",
                          detail=f"{rows} of {parsed.rows} rows have errors; nothing was imported.")
        changed = []
        for request_id, answers in new.items():
            request = requests[request_id]
            assert request is not None
            request.answer(self.clock(), answers)
            changed.append(request)
        if changed:
            self.store.save(*changed)
        imported = sum(len(a) for a in new.values())
        return {"rows": parsed.rows, "imported": imported, "already_imported": len(report) - imported,
                "requests": sorted(str(r) for r in requests), "report": report}

"""Intake's use cases: the service layer between the API and the aggregates.

Methods take primitives and return plain dicts with no personal data; the only way
back from a pseudonym to a person is `person()`, for callers allowed to see it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from contracts.access import Principal
from contracts.commands import retries_on_conflict
from contracts.envelope import Attributes
from contracts.events import (
    BenefitObserved, ClientReferred, DestinationUnknown, EmploymentObserved, Event,
    JobOfferAccepted, JobOfferMade, JobOfferRefused, PersonErased, PlacedInJob, ReferralRejected,
    ReferralWithdrawn, ReturnedForBenefit, TrajectoryClosed, TrajectoryOpened,
)
from contracts.idempotency import IdempotencyRecord, RequestKey, replay
from contracts.problems import Problem
from contracts.service import ServiceApplication
from intake.domain import (
    ClientFile, OpenReferral, Referral, ReferralError, TrajectoryLink, client_pseudonym,
)
from intake.eligibility import REASONS, Applicant, reasons_against
from intake.history import history_of
from intake.lbu import DEFAULT_RESPONSE_WEEKS, JobOffer, RefusedOffers
from intake.privacy import KeyStore, MemoryKeyStore, Person, SqlKeyStore, Vault
from intake.registry import (
    LBU_COHORT, PLACED_COHORT, POINTS, AnswerLine, EmploymentRegistry, FollowUp, LineError,
    RegistryRequest, RequestLine, due_points, observation_id,
)
from intake.registry_files import FileExchangeRegistry, write_answers, write_request


@dataclass(frozen=True)
class IntakeConfig:
    pseudonym_key: bytes
    focus2move_municipalities: frozenset[str] = frozenset({"alkmaar"})
    lbu_response_weeks: int = DEFAULT_RESPONSE_WEEKS
    # Years a closed file is kept, per programme, before the person is erased on its own.
    retention_years: tuple[tuple[str, int], ...] = (
        ("social-activation", 7), ("reintegration", 7), ("focus2move", 7), ("lbu", 7))
    # ESF files are kept at least until the end of the period's retention date.
    esf_retention_until: dt.date | None = None


@dataclass(frozen=True)
class ReferralInput:
    person: Person = field(repr=False)
    municipality: str
    programme: str
    benefit: str
    uwv_registered_on: dt.date | None
    distance_to_labour_market: str
    referred_on: dt.date
    caseworker_id: str


class IntakeApplication(ServiceApplication):
    """Receives referrals and LBU job offers from the municipal case systems."""

    name = "intake"
    group = "intake"
    consumes = (TrajectoryOpened, PlacedInJob, TrajectoryClosed)
    # The employment registry's port: files out and back (see `intake.registry`).
    registry: EmploymentRegistry = FileExchangeRegistry()

    def __init__(self, env: dict[str, str] | None = None, *, config: IntakeConfig,
                 keys: KeyStore | None = None,
                 clock: Callable[[], dt.date] = dt.date.today) -> None:
        super().__init__(env)
        self.config = config
        self.clock = clock
        self.vault = Vault(keys or self._key_store())

    def _key_store(self) -> KeyStore:
        datastore = getattr(self.recorder, "datastore", None)
        if datastore is None:
            return MemoryKeyStore()
        placeholder = "%s" if "postgres" in type(datastore).__module__ else "?"
        return SqlKeyStore(datastore, placeholder)

    # --- referrals ---------------------------------------------------------------------

    # Every command below that saves runs by the one rule of `contracts.commands`: decided
    # again on a version conflict (a concurrent request, the inbox, the timer), 503 Busy
    # when it keeps losing, never a 500.

    @retries_on_conflict("referral")
    def refer(self, referral: ReferralInput, keyed: RequestKey | None = None) -> tuple[int, dict[str, Any]]:
        """Records a referral and decides on it; (201, summary), or the first answer again."""
        if keyed and (first := replay(self, keyed)):
            return first  # also what a request that lost to its own twin finds on retrying
        return self._refer(referral, keyed)

    def _refer(self, given: ReferralInput, keyed: RequestKey | None) -> tuple[int, dict[str, Any]]:
        client_id = client_pseudonym(given.person.bsn, self.config.pseudonym_key)
        referral = Referral(
            client_id=client_id, sealed_person=self.vault.seal(client_id, given.person),
            municipality=given.municipality, programme=given.programme, benefit=given.benefit,
            uwv_registered_on=given.uwv_registered_on,
            distance_to_labour_market=given.distance_to_labour_market,
            referred_on=given.referred_on, caseworker_id=given.caseworker_id,
            route="referral", wnk_contract_starts_on=None,
        )
        applicant = Applicant(given.municipality, given.programme, given.benefit,
                              given.uwv_registered_on, given.distance_to_labour_market,
                              given.referred_on)
        reasons = reasons_against(applicant, self.config.focus2move_municipalities)
        changed: list[Any] = [referral]
        if reasons:
            referral.reject(reasons, self.clock())
        else:
            changed += self._hold_slot(client_id, given.programme, referral.id)
            referral.accept(self.clock())
            changed.append(TrajectoryLink(referral.trajectory_id, referral.id))
        changed.append(self._filed(client_id, referral.id, referral.trajectory_id,
                                   given.municipality, given.programme))
        body = self._summary(referral)
        if keyed:
            changed.append(IdempotencyRecord(keyed.scope, keyed.key, keyed.request, 201, body))
        self.save(*changed)
        return 201, body

    def _filed(self, client_id: uuid.UUID, aggregate_id: uuid.UUID, trajectory_id: uuid.UUID,
               municipality: str, programme: str) -> ClientFile:
        """The person's file, with one more referral or offer in it."""
        try:
            file: ClientFile = self.repository.get(ClientFile.create_id(client_id))
        except AggregateNotFoundError:
            file = ClientFile(client_id)
        file.add(aggregate_id, trajectory_id, municipality, programme)
        return file

    def _hold_slot(self, client_id: uuid.UUID, programme: str, referral_id: uuid.UUID) -> list[Any]:
        """The (person, programme) slot, held for this referral; 409 if another holds it."""
        slot_id = OpenReferral.create_id(client_id, programme)
        try:
            slot: OpenReferral = self.repository.get(slot_id)
        except AggregateNotFoundError:
            slot = OpenReferral(client_id, programme)
        if slot.referral_id is not None:
            existing: Referral = self.repository.get(slot.referral_id)
            if existing.is_open:
                raise Problem(409, "Already referred",
                              "This person has an open referral to this programme.",
                              existing=f"/referrals/{existing.id}")
        slot.hold(referral_id)
        return [slot]

    def referral(self, referral_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        return self._summary(self._referral_for(referral_id, caller))

    @retries_on_conflict("referral")
    def withdraw(self, referral_id: uuid.UUID, caller: Principal, *, withdrawn_on: dt.date,
                 reason: str) -> dict[str, Any]:
        referral = self._referral_for(referral_id, caller)
        try:
            referral.withdraw(withdrawn_on, reason)
        except ReferralError as error:
            raise Problem(409, "Referral not open",
                          f"The referral is {error.state}; only an open referral can be withdrawn.",
                          state=error.state, allowed=list(error.allowed)) from None
        self.save(referral, *self._release_slot(referral))
        return self._summary(referral)

    def _release_slot(self, referral: Referral) -> list[Any]:
        try:
            slot: OpenReferral = self.repository.get(
                OpenReferral.create_id(referral.client_id, referral.programme))
        except AggregateNotFoundError:
            return []
        if slot.referral_id != referral.id:
            return []
        slot.release()
        return [slot]

    def person(self, referral_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        """Whom a referral is about, for a caller allowed to know; 410 once erased."""
        referral = self._referral_for(referral_id, caller)
        person = self.vault.open(referral.client_id, referral.sealed_person)
        if person is None:
            raise Problem(410, "Personal data erased")
        return {"client_id": str(referral.client_id), "bsn": person.bsn, "name": person.name,
                "date_of_birth": person.date_of_birth.isoformat()}

    def _referral_for(self, referral_id: uuid.UUID, caller: Principal) -> Referral:
        """The referral, if the caller's tenant may know it exists; else 404."""
        try:
            referral: Referral = self.repository.get(referral_id)
        except AggregateNotFoundError:
            referral = None  # type: ignore[assignment]
        if not isinstance(referral, Referral) or not caller.sees_municipality(referral.municipality):
            raise Problem(404, "Referral not found")
        return referral

    def _summary(self, referral: Referral) -> dict[str, Any]:
        return {
            "referral_id": str(referral.id),
            "trajectory_id": str(referral.trajectory_id) if referral.status != "rejected" else None,
            "client_id": str(referral.client_id),
            "municipality": referral.municipality,
            "programme": referral.programme,
            "route": referral.route,
            "status": referral.status,
            "reasons": [{"code": c, "reason": REASONS.get(c, c)} for c in referral.reasons],
            "referred_on": referral.referred_on.isoformat(),
            "history": history_of(self, referral),  # valid date and recorded time apart
        }

    # --- erasure ---------------------------------------------------------------------

    def erase_person_of(self, referral_id: uuid.UUID, caller: Principal, *, reason: str) -> dict[str, Any]:
        """Erases the person a referral is about, in all their referrals and offers."""
        referral = self._referral_for(referral_id, caller)
        return self.erase(referral.client_id, reason=reason)

    @retries_on_conflict("client file")
    def erase(self, client_id: uuid.UUID, *, reason: str) -> dict[str, Any]:
        """Records the erasure, then deletes the person's key (again, if a crash came
        between the two: the record is what makes it happen)."""
        file: ClientFile = self.repository.get(ClientFile.create_id(client_id))
        if file.erased_on is None:
            file.erase(self.clock(), reason)
            self.save(file)
        self.vault.keys.shred(client_id)
        return {"client_id": str(client_id), "erased_on": file.erased_on.isoformat(),
                "reason": file.reason, "referrals_and_offers": len(file.entries)}

    def erase_expired(self) -> int:
        """The retention job: people whose every referral and offer has been closed for
        longer than its programme's retention (and past the ESF date) are erased."""
        today, erased = self.clock(), 0
        if self.config.esf_retention_until and today <= self.config.esf_retention_until:
            return 0
        years = dict(self.config.retention_years)
        for file in self._client_files():
            if file.erased_on is not None:
                self.vault.keys.shred(file.client_id)  # finish an erasure a crash interrupted
                continue
            ends = [self._retained_until(uuid.UUID(a), e["programme"], years) for a, e in file.entries.items()]
            if ends and all(end is not None and end < today for end in ends):
                self.erase(file.client_id, reason="retention-ended")
                erased += 1
        return erased

    def _retained_until(self, aggregate_id: uuid.UUID, programme: str, years: dict[str, int]) -> dt.date | None:
        """None while the referral or offer is still open; else its last day of retention."""
        item = self.repository.get(aggregate_id)
        if isinstance(item, Referral) and item.is_open:
            return None
        if isinstance(item, JobOffer) and item.state in ("offered", "refused"):
            return None
        last = item.history[-1][1]
        return last.replace(year=last.year + years.get(programme, 7), day=min(last.day, 28))

    def _client_files(self) -> list[ClientFile]:
        topic, position, files = get_topic(ClientFile.Opened), None, []
        while page := self.recorder.select_notifications(position, 500, topics=[topic],
                                                         inclusive_of_start=False):
            files += [self.repository.get(n.originator_id) for n in page]
            position = page[-1].id
        return files

    # --- LBU: a job instead of a benefit ------------------------------------------------

    @retries_on_conflict("job offer")
    def offer_job(self, person: Person, *, municipality: str, offered_on: dt.date,
                  caseworker_id: str, keyed: RequestKey | None = None) -> tuple[int, dict[str, Any]]:
        if keyed and (first := replay(self, keyed)):
            return first
        client_id = client_pseudonym(person.bsn, self.config.pseudonym_key)
        offer = JobOffer(trajectory_id=uuid.uuid4(), client_id=client_id,
                         sealed_person=self.vault.seal(client_id, person),
                         municipality=municipality, offered_on=offered_on,
                         caseworker_id=caseworker_id)
        body = self._offer_summary(offer)
        extra = [IdempotencyRecord(keyed.scope, keyed.key, keyed.request, 201, body)] if keyed else []
        extra.append(self._filed(client_id, offer.id, offer.trajectory_id, municipality, "lbu"))
        self.save(offer, *extra)
        return 201, body

    def job_offer(self, offer_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        return self._offer_summary(self._offer_for(offer_id, caller))

    @retries_on_conflict("job offer")
    def accept_offer(self, offer_id: uuid.UUID, caller: Principal, *, accepted_on: dt.date,
                     contract_starts_on: dt.date) -> dict[str, Any]:
        """The applicant takes the job: a Focus2Move trajectory starts at WNK."""
        offer = self._offer_for(offer_id, caller)
        referral = Referral(
            client_id=offer.client_id, sealed_person=offer.sealed_person,
            municipality=offer.municipality, programme="focus2move", benefit="none",
            uwv_registered_on=None, distance_to_labour_market="unknown",
            referred_on=accepted_on, caseworker_id=offer.caseworker_id,
            route="lbu", wnk_contract_starts_on=contract_starts_on,
        )
        with _conflict(offer):
            offer.accept(accepted_on, contract_starts_on, referral.id)
        slot = self._hold_slot(offer.client_id, "focus2move", referral.id)
        referral.accept(accepted_on)
        self.save(offer, referral, *slot, TrajectoryLink(referral.trajectory_id, referral.id),
                  *self._unwatch(offer), self._filed(offer.client_id, referral.id, referral.trajectory_id,
                                                     offer.municipality, "focus2move"))
        return self._offer_summary(offer)

    @retries_on_conflict("job offer")
    def refuse_offer(self, offer_id: uuid.UUID, caller: Principal, *, refused_on: dt.date) -> dict[str, Any]:
        offer = self._offer_for(offer_id, caller)
        with _conflict(offer):
            offer.refuse(refused_on, self.config.lbu_response_weeks)
        watchlist = self._watchlist(offer.municipality)
        watchlist.watch(offer.id, offer.respond_by)
        self.save(offer, watchlist)
        return self._offer_summary(offer)

    @retries_on_conflict("job offer")
    def record_return(self, offer_id: uuid.UUID, caller: Principal, *, returned_on: dt.date) -> dict[str, Any]:
        """The applicant came back for a benefit (before or after the deadline)."""
        offer = self._offer_for(offer_id, caller)
        with _conflict(offer):
            offer.record_return(returned_on)
        self.save(offer, *self._unwatch(offer))
        return self._offer_summary(offer)

    def mark_unknown_destinations(self, municipalities: Sequence[str]) -> int:
        """The timer: refused offers past their deadline join the unknown cohort, once.

        Safe to run twice or in two processes: each offer and watchlist changes under
        optimistic concurrency, so a second run finds nothing due or loses the race.
        """
        today, marked = self.clock(), 0
        for municipality in municipalities:
            watchlist = self._watchlist(municipality)
            for offer_id in watchlist.due(today):
                offer: JobOffer = self.repository.get(offer_id)
                overdue = offer.is_overdue(today)
                if overdue:
                    offer.mark_destination_unknown(today)
                watchlist.unwatch(offer_id)
                try:
                    self.save(offer, watchlist)
                except IntegrityError:
                    return marked  # another run is at it; it will finish the job
                marked += overdue
        return marked

    def _watchlist(self, municipality: str) -> RefusedOffers:
        try:
            return self.repository.get(RefusedOffers.create_id(municipality))
        except AggregateNotFoundError:
            return RefusedOffers(municipality)

    def _unwatch(self, offer: JobOffer) -> list[Any]:
        watchlist = self._watchlist(offer.municipality)
        if str(offer.id) not in watchlist.pending:
            return []
        watchlist.unwatch(offer.id)
        return [watchlist]

    def _offer_for(self, offer_id: uuid.UUID, caller: Principal) -> JobOffer:
        try:
            offer = self.repository.get(offer_id)
        except AggregateNotFoundError:
            offer = None
        if not isinstance(offer, JobOffer) or not caller.sees_municipality(offer.municipality):
            raise Problem(404, "Job offer not found")
        return offer

    def _offer_summary(self, offer: JobOffer) -> dict[str, Any]:
        return {
            "offer_id": str(offer.id),
            "client_id": str(offer.client_id),
            "municipality": offer.municipality,
            "state": offer.state,
            "respond_by": offer.respond_by.isoformat() if offer.respond_by else None,
            "referral_id": str(offer.referral_id) if offer.referral_id else None,
            "allowed_next": list(offer.allowed_next()),
            "history": history_of(self, offer),  # valid date and recorded time apart
        }

    # --- the employment registry ---------------------------------------------------------

    @retries_on_conflict("registry request")
    def build_registry_request(self, caller: Principal, *, municipality: str,
                               on: dt.date) -> tuple[dict[str, Any], bytes] | None:
        """The request file for every follow-up point of the municipality's cohorts reached
        on or before `on` and not asked about yet; None when none is due. Erased people are
        left out. The file is returned, not kept: see `registry_file`."""
        if not caller.sees_municipality(municipality):
            raise Problem(403, "Forbidden", "A municipality follows only its own clients.")
        if on > self.clock():
            raise Problem(422, "Invalid request", "The date must not be after today.",
                          errors=[{"field": "on", "reason": "must not be in the future"}])
        lines: list[dict[str, Any]] = []
        asked: list[RequestLine] = []
        follow_ups: list[tuple[FollowUp, list[str]]] = []
        for source, cohort, reference, offer_id in self._registry_cohorts(municipality):
            follow_up = self._follow_up(source.id)
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
        self.save(request, *(f for f, _ in follow_ups))
        return self._registry_summary(request), self.registry.request(request.id, asked)

    def _registry_cohorts(self, municipality: str) -> list[tuple[Any, str, dt.date, uuid.UUID | None]]:
        """(referral or offer, cohort, reference date, offer id): the unknown-destination
        cohort from the refusal, placed clients from their latest placement."""
        found: list[tuple[Any, str, dt.date, uuid.UUID | None]] = []
        for offer_id in self._originators(JobOffer.DestinationUnknown):
            offer: JobOffer = self.repository.get(offer_id)
            if offer.municipality == municipality and offer.state == "destination-unknown":
                refused = [entry[1] for entry in offer.history if entry[0] == "refused"]
                found.append((offer, LBU_COHORT, refused[-1], offer.id))
        for referral_id in self._originators(Referral.TrajectoryPlaced):
            referral: Referral = self.repository.get(referral_id)
            placed = [entry[1] for entry in referral.history if entry[0] == "placed"]
            if referral.municipality == municipality and placed:
                found.append((referral, PLACED_COHORT, max(placed), None))
        return found

    def _originators(self, event_class: type) -> list[uuid.UUID]:
        topic, position, ids = get_topic(event_class), None, {}
        while page := self.recorder.select_notifications(position, 500, topics=[topic],
                                                         inclusive_of_start=False):
            ids.update((n.originator_id, None) for n in page)
            position = page[-1].id
        return list(ids)

    def _follow_up(self, source_id: uuid.UUID) -> FollowUp:
        try:
            return self.repository.get(FollowUp.create_id(source_id))
        except AggregateNotFoundError:
            return FollowUp(source_id)

    def registry_request(self, request_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        return self._registry_summary(self._registry_request_for(request_id, caller))

    def _registry_request_for(self, request_id: uuid.UUID, caller: Principal) -> RegistryRequest:
        try:
            request = self.repository.get(request_id)
        except AggregateNotFoundError:
            request = None
        if not isinstance(request, RegistryRequest) or not caller.sees_municipality(request.municipality):
            raise Problem(404, "Registry request not found")
        return request

    @staticmethod
    def _registry_summary(request: RegistryRequest) -> dict[str, Any]:
        points: dict[str, int] = {}
        for line in request.lines.values():
            points[line["point"]] = points.get(line["point"], 0) + 1
        return {
            "request_id": str(request.id), "municipality": request.municipality,
            "on": request.on.isoformat(), "built_on": request.built_on.isoformat(),
            "lines": len(request.lines), "points": points, "answered": len(request.answers),
            "imports": list(request.imports),
            "observations": [
                {"line": n, "client_id": line["client_id"], "trajectory_id": line["trajectory_id"],
                 "offer_id": line["offer_id"], "point": line["point"], "observe_on": line["observe_on"],
                 "answer": request.answers.get(n)}
                for n, line in sorted(request.lines.items())],
        }

    def registry_file(self, request_id: uuid.UUID, caller: Principal, kind: str) -> bytes:
        """A kept file, rendered again: the request, or the answers imported so far. The
        BSN is read from the person's sealed data, so an erased person's is empty."""
        request = self._registry_request_for(request_id, caller)
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
        try:
            source = self.repository.get(uuid.UUID(line["source_id"]))
        except AggregateNotFoundError:
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
                    requests[x.request_id] = self._registry_request_for(x.request_id, caller)
                except Problem:
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
            raise Problem(422, "Answer file rejected",
                          f"{rows} of {parsed.rows} rows have errors; nothing was imported.",
                          errors=[e.as_dict() for e in errors[:1000]])
        changed = []
        for request_id, answers in new.items():
            request = requests[request_id]
            assert request is not None
            request.answer(self.clock(), answers)
            changed.append(request)
        if changed:
            self.save(*changed)
        imported = sum(len(a) for a in new.values())
        return {"rows": parsed.rows, "imported": imported, "already_imported": len(report) - imported,
                "requests": sorted(str(r) for r in requests), "report": report}

    # --- what trajectory tells intake --------------------------------------------------

    def on_event(self, event: Event, attributes: Attributes,
                 processing_event: ProcessingEvent[uuid.UUID]) -> None:
        try:
            link: TrajectoryLink = self.repository.get(event.trajectory_id)
        except AggregateNotFoundError:
            return  # a trajectory intake did not open: nothing to follow
        referral: Referral = self.repository.get(link.referral_id)
        if isinstance(event, TrajectoryOpened):
            referral.trajectory_started(event.opened_on)
        elif isinstance(event, PlacedInJob):
            referral.trajectory_placed(event.starts_on)
        elif isinstance(event, TrajectoryClosed):
            referral.trajectory_closed(event.closed_on, event.reason)
            processing_event.collect_events(*self._release_slot(referral))
        processing_event.collect_events(referral)

    # --- what intake tells the others --------------------------------------------------

    def integration_events(self, domain_event: Any) -> Sequence[tuple[str, Event]]:
        """Translates intake's domain events into what other services may know of them."""
        kind = type(domain_event)
        if kind in (Referral.Accepted, Referral.Rejected, Referral.Withdrawn):
            referral: Referral = self.repository.get(domain_event.originator_id,
                                                     version=domain_event.originator_version)
            return [(referral.municipality, _referral_event(referral, domain_event))]
        if kind is ClientFile.Erased:
            file: ClientFile = self.repository.get(domain_event.originator_id,
                                                   version=domain_event.originator_version)
            return [(entry["municipality"], PersonErased(
                trajectory_id=uuid.UUID(entry["trajectory_id"]), client_id=file.client_id,
                municipality=entry["municipality"], erased_on=domain_event.erased_on,
                reason=domain_event.reason)) for _, entry in sorted(file.entries.items())]
        if kind in (JobOffer.Made, JobOffer.Accepted, JobOffer.Refused,
                    JobOffer.DestinationUnknown, JobOffer.Returned):
            offer: JobOffer = self.repository.get(domain_event.originator_id,
                                                  version=domain_event.originator_version)
            return [(offer.municipality, _offer_event(offer, domain_event))]
        if kind is RegistryRequest.Answered:
            request: RegistryRequest = self.repository.get(domain_event.originator_id,
                                                           version=domain_event.originator_version)
            return [(request.municipality, e) for answer in domain_event.answers
                    for e in _observed(request, answer)]
        return []


def _referral_event(referral: Referral, domain_event: Any) -> Event:
    common = {"trajectory_id": referral.trajectory_id, "referral_id": referral.id,
              "municipality": referral.municipality}
    if isinstance(domain_event, Referral.Accepted):
        return ClientReferred(**common, client_id=referral.client_id, programme=referral.programme,
                              benefit=referral.benefit, referred_on=referral.referred_on,
                              route=referral.route,
                              wnk_contract_starts_on=referral.wnk_contract_starts_on)
    if isinstance(domain_event, Referral.Rejected):
        return ReferralRejected(**common, client_id=referral.client_id, programme=referral.programme,
                                reason_code=referral.reasons[0], reason_codes=tuple(referral.reasons),
                                rejected_on=domain_event.decided_on)
    return ReferralWithdrawn(**common, withdrawn_on=domain_event.withdrawn_on,
                             reason=domain_event.reason)


def _offer_event(offer: JobOffer, domain_event: Any) -> Event:
    common = {"trajectory_id": offer.trajectory_id, "offer_id": offer.id,
              "client_id": offer.client_id, "municipality": offer.municipality}
    match domain_event:
        case JobOffer.Made():
            return JobOfferMade(**common, offered_on=offer.offered_on)
        case JobOffer.Accepted():
            return JobOfferAccepted(**common, accepted_on=domain_event.accepted_on,
                                    contract_starts_on=domain_event.contract_starts_on)
        case JobOffer.Refused():
            return JobOfferRefused(**common, refused_on=domain_event.refused_on,
                                   respond_by=domain_event.respond_by)
        case JobOffer.DestinationUnknown():
            return DestinationUnknown(**common, since=domain_event.since)
    return ReturnedForBenefit(**common, returned_on=domain_event.returned_on,
                              from_unknown_destination=domain_event.from_unknown_destination)


def _observed(request: RegistryRequest, answer: dict[str, Any]) -> tuple[Event, Event]:
    """One answer line: what the registry and the benefit administration observed."""
    line = request.lines[int(answer["line"])]
    common = {"trajectory_id": uuid.UUID(line["trajectory_id"]),
              "observation_id": observation_id(request.id, int(answer["line"])),
              "client_id": uuid.UUID(line["client_id"]), "municipality": request.municipality,
              "offer_id": uuid.UUID(line["offer_id"]) if line["offer_id"] else None,
              "cohort": line["cohort"], "point": line["point"],
              "months_after": POINTS[line["point"]][1],
              "reference_date": dt.date.fromisoformat(line["reference_date"]),
              "observed_on": dt.date.fromisoformat(line["observe_on"]),
              "period_start": dt.date.fromisoformat(answer["period_start"]),
              "period_end": dt.date.fromisoformat(answer["period_end"])}
    return (EmploymentObserved(**common, employed=answer["employed"], employer_id=answer["employer_id"],
                               hours_per_week=answer["hours_per_week"]),
            BenefitObserved(**common, on_benefit=answer["on_benefit"], benefit_kind=answer["benefit_kind"]))


class _conflict:
    """Turns a command that does not fit the offer's state into a 409 naming it."""

    def __init__(self, offer: JobOffer) -> None:
        self.offer = offer

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, tb: Any) -> None:
        if isinstance(error, ReferralError):
            raise Problem(409, "Not possible now",
                          f"The offer is {error.state}.", state=error.state,
                          allowed=list(error.allowed)) from None

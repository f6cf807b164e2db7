"""Reporting's HTTP API: the figures as JSON, the exports as CSV, and the dashboard.
Errors are problem+json. (No `from __future__ import annotations`: FastAPI must see the
local dependency aliases as objects.)"""

import datetime as dt
import time
import uuid
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import PlainTextResponse

from contracts import tracing
from contracts.access import Credentials, Principal
from contracts.municipalities import MUNICIPALITIES, Municipality
from contracts.problems import Conflict, Forbidden, Invalid, NotFound, Problem
from contracts.web import problems as web_problems
from contracts.web.auth import require
from contracts.web.health import health as ready
from reporting import audit
from reporting.dashboard import install_dashboard
from reporting.exports import durable_outflow, esf_participants, lbu_destinations, provider_sheet, srg_provisions
from reporting.figures import (
    Filters, budget_figures, coaching_figures, lbu_figures, provider_results, trajectory_figures,
    volume_figures, waitlist_figures,
)
from reporting.store import ReportingStore

WORDING = {403: "The credential lacks the scope, or asks for another municipality",
           404: "Reporting knows no such trajectory", 422: "A parameter is invalid"}
ERRORS = web_problems.responses(401, 403, 422, 503, described=WORDING)


def municipalities_for(caller: Principal, asked: list[str] | None) -> list[str]:
    """The municipalities a caller may see, narrowed to those asked for."""
    allowed = list(MUNICIPALITIES) if caller.municipality is None else [caller.municipality]
    if caller.kind == "staff" and caller.municipality is None and not caller.may("reports:combined"):
        allowed = []
    if not asked:
        return allowed
    if not set(asked) <= set(allowed):
        raise Forbidden(detail="This credential sees only its own municipality.")
    return sorted(set(asked))


def create_api(store: ReportingStore, credentials: Credentials, *, intake_url: str | None = None,
               today=dt.date.today, bootstrap_servers: str | None = None,
               service_urls: dict[str, str] | None = None) -> FastAPI:
    api = FastAPI(title="Tweespoor reporting", version="0.2.0",
                  description="Figures and exports from read models rebuilt from Kafka. A "
                              "municipality's credential sees only that municipality.")
    web_problems.install(api)
    reader = Annotated[Principal, Depends(require(credentials, "reports:read"))]

    def filters(programme: Annotated[str | None, Query(pattern="^(social-activation|reintegration|focus2move)$")] = None,
                provider: Annotated[str | None, Query(max_length=80)] = None,
                discipline: Annotated[str | None, Query(max_length=80)] = None,
                start: dt.date | None = None, end: dt.date | None = None) -> Filters:
        return Filters(programme, provider, discipline, start, end)

    Narrowing = Annotated[Filters, Depends(filters)]
    Asked = Annotated[list[Municipality] | None, Query(description="Municipalities (default: all the credential may see)")]

    def figures_for(caller: Principal, municipality: list[str] | None, narrowing: Filters) -> dict[str, Any]:
        scope = municipalities_for(caller, municipality)
        docs = store.documents("trajectory", scope)
        tender = store.documents("tender")  # the tender's reference data, the same for all
        return {
            "municipalities": scope,
            "filters": {k: (v.isoformat() if isinstance(v, dt.date) else v)
                        for k, v in vars(narrowing).items()},
            "trajectories": trajectory_figures(docs, narrowing),
            "waitlists": waitlist_figures(docs, narrowing),
            "volumes": volume_figures(docs, tender, narrowing),
            "budgets": budget_figures(docs, tender, scope, narrowing),
            "coaching": coaching_figures(docs, narrowing, today()),
            "lbu": lbu_figures(store.documents("offer", scope), narrowing, today()),
            "providers": provider_results(docs, narrowing, tender, today()),
        }

    api.state.figures_for = figures_for

    @api.get("/figures", responses=ERRORS)
    def figures(caller: reader, narrowing: Narrowing, municipality: Asked = None) -> dict[str, Any]:
        """Referrals, rejections, trajectories, outflow, lead times, waitlists, volumes
        against the contracted yearly volumes, budget used against the budget (with its
        ESF-3 and WWB shares), the results 6, 12 and 24 months after a placement with
        their evidence, overdue check-ins, the LBU cohort and where its unknown
        destinations went, results per provider. Volumes and budgets come from the
        tender's reference data that the trajectory service publishes.

        The trajectory figures add up: every trajectory opened is in exactly one of
        `open`, `placed` (it ended in a regular job) or `closed` (it ended otherwise), so
        `opened = open + placed + closed` and `closed = sum(closed_by_reason)`; a
        placement is counted once, as placed, never as closed too (`closed_by_reason` has
        no `placed`). Per provider, likewise, `placed + closed <= assigned`.

        The results after a placement (`coaching.outcomes`, at `6_months`, `12_months`
        and `24_months`) claim no more than the records prove: a placement that reached
        the point (by `as_of`) is `employed` or `not_employed` only with evidence -- the
        employment registry's answer, the employer's confirmation, a check-in or
        follow-up contact from six weeks before the point to two weeks after it, or (not
        employed) a job loss the coach reported before it -- and otherwise `unknown`,
        never employed. So `employed + not_employed + unknown = reached`, `sum(by_evidence)
        = employed + not_employed`, and `share_employed_of_known` is employed over
        employed + not_employed (None when nothing is known), with `unknown` beside it.
        `coaching.outcomes_by` gives the same per municipality, programme and provider (a
        trajectory with several providers counts under each). `coaching.survival` gives,
        per programme, one row per month 1..24 after the placement's start, by the same
        rule at each month's point (nothing carried forward between evidence points, so
        months without a contact in their window are unknown): per month `employed +
        not_employed + unknown = reached` (the placements whose month has passed by
        `as_of`), with `share_employed_of_known`, `share_employed_of_reached` and
        `share_unknown`. For the LBU cohort's unknown destinations (`lbu.destinations`,
        3, 6 and 12 months after the refusal), `working + back_on_benefit + still_unknown
        = reached`."""
        return figures_for(caller, municipality, narrowing)

    @api.get("/event-counts", responses=ERRORS)
    def event_counts(caller: reader) -> dict[str, Any]:
        """How many events of each type the read models hold (for operations)."""
        counts: dict[str, int] = {}
        scope = municipalities_for(caller, None)
        for kind in ("trajectory", "offer", "tender"):
            for doc in store.documents(kind, None if kind == "tender" else scope):
                for type_, n in doc["types"].items():
                    counts[type_] = counts.get(type_, 0) + n
        return {"total": sum(counts.values()), "per_type": dict(sorted(counts.items()))}

    def csv(body: str, name: str) -> PlainTextResponse:
        return PlainTextResponse(body, media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @api.get("/exports/esf-participants.csv", responses=ERRORS, response_class=PlainTextResponse)
    def esf(request: Request, caller: reader, narrowing: Narrowing, municipality: Asked = None,
            with_bsn: bool = False) -> PlainTextResponse:
        """The ESF participant list. `with_bsn=true` asks intake, with the caller's own
        credential, for each participant's BSN; intake refuses callers without persons:read.
        The result twelve months after a placement is employed, not employed or unknown by
        the evidence rule (never employed for want of a reported job loss), with its
        evidence in `evidence_12_months` and `evidence_on_12_months`; `result_12_months`
        is "not-yet" before the point."""
        docs = store.documents("trajectory", municipalities_for(caller, municipality))
        bsn_of = None
        if with_bsn:
            if not intake_url:
                raise Invalid.field("with_bsn", "not available here", title="BSN not available",
                                    detail="This deployment does not reach intake.")
            bsn_of = _bsn_lookup(intake_url, request.headers.get("authorization", ""))
        return csv(esf_participants(docs, narrowing, bsn_of, today()), "esf-participants.csv")

    @api.get("/exports/srg-provisions.csv", responses=ERRORS, response_class=PlainTextResponse)
    def srg(caller: reader, narrowing: Narrowing, municipality: Asked = None) -> PlainTextResponse:
        """Provision records per person and month, in the shape of CBS's SRG."""
        docs = store.documents("trajectory", municipalities_for(caller, municipality))
        return csv(srg_provisions(docs, narrowing, today()), "srg-provisions.csv")

    @api.get("/exports/provider-results.csv", responses=ERRORS, response_class=PlainTextResponse)
    def providers(caller: reader, narrowing: Narrowing, municipality: Asked = None) -> PlainTextResponse:
        docs = store.documents("trajectory", municipalities_for(caller, municipality))
        return csv(provider_sheet(docs, narrowing, store.documents("tender"), today()), "provider-results.csv")

    @api.get("/exports/durable-outflow.csv", responses=ERRORS, response_class=PlainTextResponse)
    def outflow(caller: reader, narrowing: Narrowing, municipality: Asked = None) -> PlainTextResponse:
        """Durable outflow after a placement, counts only: one row per municipality,
        programme, provider and point (6, 12, 24 months after the job's start), each what
        `/figures`' `coaching.outcomes` answers for that municipality, programme and
        provider. `employed + not_employed + unknown = reached`; the evidence counts
        (`evidence_registry`, `_employer`, `_check_in`, `_follow_up`, `_job_loss`) add up
        to `employed + not_employed`."""
        docs = store.documents("trajectory", municipalities_for(caller, municipality))
        return csv(durable_outflow(docs, narrowing, today()), "durable-outflow.csv")

    @api.get("/exports/lbu-destinations.csv", responses=ERRORS, response_class=PlainTextResponse)
    def destinations(caller: reader, municipality: Asked = None, start: dt.date | None = None,
                     end: dt.date | None = None) -> PlainTextResponse:
        """Where the LBU cohort's unknown destinations went, counts only: one row per
        municipality in view and point (3, 6, 12 months after the refusal), each what
        `/figures`' `lbu.destinations` answers for that municipality and period (`start`
        and `end` on the offer date). `working + back_on_benefit + still_unknown = reached`;
        the evidence counts add up to `reached - not_observed`."""
        offers = {m: store.documents("offer", [m]) for m in municipalities_for(caller, municipality)}
        return csv(lbu_destinations(offers, Filters(start=start, end=end), today()), "lbu-destinations.csv")

    @api.get("/health")
    def health() -> dict[str, str]:
        return ready(api)  # 503 problem+json while a consumer cannot make progress

    install_dashboard(api, store, credentials, today)
    install_audit_routes(api, store, credentials, bootstrap_servers, service_urls or {})
    return api


def install_audit_routes(api: FastAPI, store: ReportingStore, credentials: Credentials,
                         bootstrap_servers: str | None, service_urls: dict[str, str]) -> None:
    auditor = Annotated[Principal, Depends(require(credentials, "audit:read", "auditor"))]
    errors = web_problems.responses(401, 403, 404, 422, 503, described=WORDING)

    def known(trajectory_id: uuid.UUID, caller: Principal, action: str) -> dict[str, Any]:
        span = tracing.current()
        store.log_access(caller.id, str(trajectory_id), action, dt.datetime.now(dt.UTC).isoformat(),
                         trace_id=span.trace_id if span else None)
        doc = store.document("trajectory", str(trajectory_id))
        if doc is None:
            raise NotFound("Trajectory")
        return doc

    async def events_from(source: str, doc: dict[str, Any], trajectory_id: uuid.UUID,
                          authorization: str) -> list[Any]:
        if source == "kafka":
            if not bootstrap_servers:
                raise Problem(503, "Kafka not configured", headers={"Retry-After": "60"})
            try:
                return await audit.from_kafka(bootstrap_servers, audit.positions_of(doc), str(trajectory_id).encode())
            except LookupError as error:
                raise Conflict("Not on Kafka where indexed", f"{error}: the topics changed since reporting "
                              "indexed them; `tweespoor-reporting rebuild` indexes them as they are now") from None
        events = []
        span = tracing.current()  # the auditor's read continues into each service's log
        traced = {"traceparent": span.traceparent} if span else {}
        async with httpx.AsyncClient(timeout=30, headers={"Authorization": authorization, **traced}) as client:
            for service, url in sorted(service_urls.items()):
                response = await client.get(f"{url}/audit/trajectories/{trajectory_id}/events")
                if response.status_code != 200:
                    raise Problem(503, f"The {service} service did not answer",
                                  headers={"Retry-After": "30"})
                body = response.json()
                broken = [c for c in body["chains"] if not c["intact"]]
                if broken:
                    raise Conflict("Tampered store", f"{service}: stream {broken[0]['stream']} breaks at "
                                  f"version {broken[0]['broken_at']} ({broken[0]['reason']})", chains=broken)
                events += [audit.from_json(e) for e in body["events"]]
        return events

    Source = Annotated[str, Query(pattern="^(kafka|stores)$", description="Read from Kafka or from the services' stores")]

    @api.get("/audit/trajectories/{trajectory_id}/timeline", responses=errors, tags=["audit"])
    async def timeline(trajectory_id: uuid.UUID, request: Request, caller: auditor,
                       source: Source = "kafka") -> dict[str, Any]:
        """Every event of one trajectory from every service, in order, with valid time,
        recorded time and the service that caused it."""
        doc = known(trajectory_id, caller, f"timeline:{source}")
        events = await events_from(source, doc, trajectory_id, request.headers.get("authorization", ""))
        return {"trajectory_id": str(trajectory_id), "source": source, "events": audit.timeline(events)}

    @api.get("/audit/trajectories/{trajectory_id}/as-of", responses=errors, tags=["audit"])
    async def as_of(trajectory_id: uuid.UUID, caller: auditor, valid: dt.date | None = None,
                    known_at: dt.datetime | None = None) -> dict[str, Any]:
        """The trajectory (and its coaching plan) as it stood on `valid`, as the system
        knew it at `known_at`."""
        doc = known(trajectory_id, caller, "as-of")
        if known_at and known_at.tzinfo is None:
            known_at = known_at.replace(tzinfo=dt.UTC)
        events = await events_from("kafka", doc, trajectory_id, "")
        state = audit.as_of(events, valid=valid, known=known_at)
        if state:
            state.pop("log", None)
        return {"trajectory_id": str(trajectory_id), "valid": valid, "known_at": known_at, "state": state}

    @api.get("/audit/trajectories/{trajectory_id}/check", responses=errors, tags=["audit"])
    async def check(trajectory_id: uuid.UUID, request: Request, caller: auditor) -> dict[str, Any]:
        """Whether the Kafka topics and the services' stores agree on this trajectory."""
        doc = known(trajectory_id, caller, "check")
        authorization = request.headers.get("authorization", "")
        return {"trajectory_id": str(trajectory_id),
                **audit.compare(await events_from("kafka", doc, trajectory_id, authorization),
                                await events_from("stores", doc, trajectory_id, authorization))}

    @api.get("/audit/access-log", responses=ERRORS, tags=["audit"])
    def access_log(caller: auditor, trajectory_id: uuid.UUID | None = None) -> dict[str, Any]:
        """Who looked at which trajectory, and when (auditors included)."""
        return {"entries": store.access_log(str(trajectory_id) if trajectory_id else None)}


def _bsn_lookup(intake_url: str, authorization: str):
    client = httpx.Client(base_url=intake_url, timeout=10, headers={"Authorization": authorization})

    def bsn_of(doc: dict[str, Any]) -> str | None:
        for attempt in range(3):  # intake may be briefly busy (a 503 says when to retry)
            response = client.get(f"/referrals/{doc.get('referral_id')}/person")
            if response.status_code != 503:
                break
            time.sleep(0.2 * (attempt + 1))
        if response.status_code == 403:
            raise Forbidden(detail="Intake does not show this credential any BSN.")
        if response.status_code in (404, 410):
            return None  # erased, or not intake's
        if response.status_code != 200:
            raise Problem(503, "Intake unavailable", f"intake answered {response.status_code}",
                          headers={"Retry-After": "30"})
        return response.json()["bsn"]

    return bsn_of

"""The dashboard a municipality's staff look at: the funnel, volumes against the
contract, who still works 6, 12 and 24 months after a placement (what is known, and
beside it what is not), the same month by month per programme (a survival curve with the
unknown drawn in), where the LBU cohort's unknown destinations went, and results per
provider, as charts drawn on the server (inline SVG: nothing to fetch from elsewhere),
each with its numbers one click away and, per bar or month, on hover. Staff sign in with their municipality's credential and see only that municipality;
a credential with `reports:combined` sees the five together or any one of them.
"""

import datetime as dt
import html
from typing import Annotated, Any

from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from contracts.access import Credentials, Principal
from contracts.municipalities import MUNICIPALITIES
from contracts.providers import PROVIDERS
from reporting.figures import Filters
from reporting.store import ReportingStore

COOKIE = "tweespoor_session"
SOURCES = {"esf-3": "ESF-3", "wwb-werkdeel": "WWB work budget"}
LABELS = {"social-activation": "Social activation", "reintegration": "Re-integration",
          "focus2move": "Focus2Move"}
COLOURS = ["#1b5e8c", "#2e8b57", "#d98e04", "#a23b72", "#5b5f97"]


def _e(value: Any) -> str:
    return html.escape(str(value))


def _bars(rows: list[tuple[str, float, float | None]], *, unit: str = "", test_id: str) -> str:
    """Horizontal bars: (label, value, optional marker such as a contracted volume)."""
    top = max([v for _, v, _ in rows] + [m for *_, m in rows if m] + [1])
    height, out = 34 * len(rows) + 10, []
    for i, (label, value, marker) in enumerate(rows):
        y, width = 10 + 34 * i, 360 * value / top
        out.append(f'<text x="0" y="{y + 17}" class="label">{_e(label)}</text>'
                   f'<rect x="200" y="{y}" width="{width:.1f}" height="24" rx="3" fill="{COLOURS[i % 5]}" '
                   f'data-value="{value}"><title>{_e(label)}: {value:g}{unit}</title></rect>'
                   f'<text x="{206 + width:.1f}" y="{y + 17}" class="value">{value:g}{unit}</text>')
        if marker:
            x = 200 + 360 * marker / top
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y - 3}" y2="{y + 27}" class="marker">'
                       f'<title>contracted: {marker:g}</title></line>')
    return (f'<svg viewBox="0 0 600 {height}" role="img" data-testid="{test_id}" '
            f'aria-label="{test_id}">{"".join(out)}</svg>')


def _share(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


def _known(block: dict[str, Any]) -> str:
    """The retention share, only over those whose result is known, with the unknown beside it."""
    known = block["employed"] + block["not_employed"]
    if not known:
        return f"No result known yet; {block['unknown']} unknown."
    return (f"{_share(block['share_employed_of_known'])} employed of the {known} whose result is known; "
            f"{block['unknown']} unknown.")


def _table(header: list[str], rows: list[list[Any]], test_id: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<details><summary>The numbers</summary><table data-testid="{test_id}">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></details>")


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


def _month_text(r: dict[str, Any]) -> str:
    return (f"month {r['month']}: {r['reached']} reached, {r['employed']} employed, "
            f"{r['not_employed']} not employed, {r['unknown']} unknown; "
            f"{_pct(r['share_employed_of_reached'])} employed of all reached, "
            f"{_pct(r['share_employed_of_known'])} of those known, {_pct(r['share_unknown'])} unknown")


def _survival(programme: str, rows: list[dict[str, Any]]) -> str:
    """A step chart of one programme's months 1..24: the share employed of all that reached
    the month (solid), of those whose result is known (dashed), and the share unknown as a
    grey bar hanging from 100% -- between the solid line and the bar: not employed. Months
    nobody reached yet are left empty; each month's numbers are on hover (`<title>`)."""
    left, top, width, height = 48, 14, 540, 180
    step = width / 24

    def x(month: float) -> float:
        return left + (month - 1) * step

    def y(share: float) -> float:
        return top + height * (1 - share)

    out = [f'<line x1="{left}" x2="{left + width}" y1="{y(s):.1f}" y2="{y(s):.1f}" class="grid"/>'
           f'<text x="{left - 6}" y="{y(s) + 4:.1f}" class="value" text-anchor="end">{s:.0%}</text>'
           for s in (0, 0.5, 1)]
    out += [f'<text x="{x(m) + step / 2:.1f}" y="{top + height + 16}" class="value" text-anchor="middle">{m}</text>'
            for m in (1, 3, 6, 9, 12, 15, 18, 21, 24)]
    out.append(f'<text x="{left + width / 2}" y="{top + height + 32}" class="label" text-anchor="middle">'
               "months since the placement</text>")
    legend = top + height + 48
    out.append(f'<path d="M{left},{legend} h24" class="share-employed-of-reached"/>'
               f'<text x="{left + 30}" y="{legend + 4}" class="value">employed of all reached</text>'
               f'<path d="M{left + 190},{legend} h24" class="share-employed-of-known"/>'
               f'<text x="{left + 220}" y="{legend + 4}" class="value">employed of those known</text>'
               f'<rect x="{left + 390}" y="{legend - 6}" width="12" height="12" class="unknown"/>'
               f'<text x="{left + 408}" y="{legend + 4}" class="value">unknown</text>')
    lines: dict[str, list[str]] = {"share_employed_of_reached": [], "share_employed_of_known": []}
    for r in rows:
        if not r["reached"]:
            continue
        m = r["month"]
        out.append(f'<g class="month" data-month="{m}" data-reached="{r["reached"]}" data-employed="{r["employed"]}" '
                   f'data-not-employed="{r["not_employed"]}" data-unknown="{r["unknown"]}">'
                   f'<rect x="{x(m) + 2:.1f}" y="{top}" width="{step - 4:.1f}" height="{height * r["share_unknown"]:.1f}" '
                   f'class="unknown"/><rect x="{x(m):.1f}" y="{top}" width="{step:.1f}" height="{height}" class="hit">'
                   f"<title>{_e(_month_text(r))}</title></rect></g>")
        for key, path in lines.items():
            share = r[key]
            if share is None:
                continue
            start = "L" if path and path[-1].endswith(f"{x(m):.1f}") else "M"
            path.append(f"{start}{x(m):.1f},{y(share):.1f} H{x(m + 1):.1f}")
    for key, path in lines.items():
        out.append(f'<path d="{" ".join(path)}" class="{key.replace("_", "-")}"/>')
    for r in rows:
        if r["reached"] and r["month"] in (6, 12, 24) and r["share_employed_of_reached"] is not None:
            out.append(f'<text x="{x(r["month"]) + step / 2:.1f}" y="{y(r["share_employed_of_reached"]) - 4:.1f}" '
                       f'class="value" text-anchor="middle">{_pct(r["share_employed_of_reached"])}</text>')
    label = (f"{LABELS.get(programme, programme)}, share still employed by month since the placement: "
             + ("; ".join(_month_text(r) for r in rows if r["reached"]) or "no placement has reached a month yet"))
    return (f'<svg viewBox="0 0 600 {top + height + 58}" role="img" data-testid="survival-{_e(programme)}" '
            f'aria-label="{_e(label)}">{"".join(out)}</svg>')


DESTINATIONS = (("working", "working", "#2e8b57"), ("back_on_benefit", "back on a benefit", "#d98e04"),
                ("still_unknown", "still unknown", "#9aa1ad"))


def _destinations(blocks: dict[str, dict[str, Any]]) -> str:
    """One bar per point after the refusal, split into working, back on a benefit and still
    unknown (each as a share of those that reached the point, the count on hover)."""
    out, texts = [], []
    for i, (point, b) in enumerate(blocks.items()):
        y, months = 10 + 34 * i, point.split("_")[0]
        out.append(f'<text x="0" y="{y + 17}" class="label">{months} months ({b["reached"]} reached)</text>')
        if not b["reached"]:
            out.append(f'<text x="200" y="{y + 17}" class="value">not reached yet</text>')
        at = 200.0
        for key, name, colour in DESTINATIONS:
            width = 360 * b[key] / b["reached"] if b["reached"] else 0
            text = f"{months} months: {b[key]} {name} of {b['reached']} reached"
            texts.append(text)
            if b["reached"]:
                out.append(f'<rect x="{at:.1f}" y="{y}" width="{width:.1f}" height="24" fill="{colour}" '
                           f'data-point="{months}" data-kind="{key}" data-value="{b[key]}"><title>{_e(text)}</title></rect>')
                if width >= 22:
                    out.append(f'<text x="{at + width / 2:.1f}" y="{y + 17}" class="inside" text-anchor="middle">'
                               f"{b[key]}</text>")
            at += width
    y = 10 + 34 * len(blocks)
    for j, (_, name, colour) in enumerate(DESTINATIONS):
        out.append(f'<rect x="{200 + 130 * j}" y="{y + 4}" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{216 + 130 * j}" y="{y + 15}" class="value">{name}</text>')
    return (f'<svg viewBox="0 0 600 {y + 24}" role="img" data-testid="destinations" '
            f'aria-label="{_e("Where the LBU cohort with an unknown destination went: " + "; ".join(texts))}">'
            f'{"".join(out)}</svg>')


def render(figures: dict[str, Any], *, who: str, choice: list[str], options: list[str],
           year: int) -> str:
    t, c = figures["trajectories"], figures["coaching"]
    funnel = [("Referred", t["referred"], None), ("Trajectory opened", t["trajectories"]["opened"], None),
              ("Placed in a job", t["trajectories"]["placed"], None),
              ("Employed after 12 months", c["outcomes"]["12_months"]["employed"], None)]
    # The contracted yearly volumes (from the tender's reference data) are for the five
    # municipalities together: a mark only where all five are in view.
    five = len(figures["municipalities"]) == len(MUNICIPALITIES)
    volumes = [(LABELS[v["programme"]], v["opened"], v["contracted_yearly"] if five else None)
               for v in figures["volumes"]]
    budget_bars, budget_rows = [], []
    for b in figures["budgets"]:
        budget_bars.append((f'{b["title"]}: used', round(b["used_eur"] / 1000, 1), round(b["budget_eur"] / 1000, 1)))
        budget_rows.append([b["title"], "all sources", b["used_eur"], b["budget_eur"]])
        for source, used in b["used_by_source_eur"].items():
            label, budget = SOURCES.get(source, source), b["budget_by_source_eur"][source]
            budget_bars.append((f"  of which {label}", round(used / 1000, 1), round(budget / 1000, 1)))
            budget_rows.append([b["title"], label, round(used), round(budget)])
    waiting = figures["waitlists"]["waiting"]
    twelve = c["outcomes"]["12_months"]
    # Only what is proven counts as employed; the unknown are shown beside it, not hidden.
    retention = [("Employed", twelve["employed"], None), ("Same employer", twelve["same_employer"], None),
                 ("Not employed", twelve["not_employed"], None), ("Unknown", twelve["unknown"], None)]
    points = [[label, b["reached"], b["employed"], b["not_employed"], b["unknown"], _share(b["share_employed_of_known"])]
              for label, b in (("6 months", c["outcomes"]["6_months"]), ("12 months", twelve),
                               ("24 months", c["outcomes"]["24_months"]))]
    survival = "".join(
        f"""<section><h2>Still employed, month by month: {_e(LABELS.get(programme, programme))}</h2>
{_survival(programme, rows)}
<p><small>Solid: employed of all placements that reached the month; dashed: employed of those whose result is known; grey: unknown. Each month is judged by its own evidence (the registry, the employer, a contact from six weeks before the month's point to two weeks after it, a reported job loss), nothing carried forward between check-ins: months with no contact in their window (5, 8 and 11 in the coaching year, most after it) are honestly unknown. Only placements that reached a month count in it, so the later months describe the earlier placements.</small></p>
{_table(["month", "reached", "employed", "not employed", "unknown", "employed of reached", "employed of known", "unknown share"], [[r["month"], r["reached"], r["employed"], r["not_employed"], r["unknown"], _pct(r["share_employed_of_reached"]), _pct(r["share_employed_of_known"]), _pct(r["share_unknown"])] for r in rows if r["reached"]], f"survival-numbers-{programme}")}</section>
""" for programme, rows in c["survival"].items() if any(r["reached"] for r in rows))
    destinations = figures["lbu"]["destinations"]
    destination_rows = [[f"{point.split('_')[0]} months", b["reached"], b["working"], b["back_on_benefit"],
                         b["still_unknown"]] for point, b in destinations.items()]
    providers = figures["providers"]
    by_provider: dict[str, list[int]] = {}
    for row in providers:
        assigned_placed = by_provider.setdefault(row["provider"], [0, 0])
        assigned_placed[0] += row["assigned"]
        assigned_placed[1] += row["placed"]
    provider_bars = [(PROVIDERS.get(p, p), round(100 * pl / a, 1) if a else 0.0, None)
                     for p, (a, pl) in sorted(by_provider.items())]
    selector = "".join(
        f'<option value="{_e(m)}"{" selected" if [m] == choice else ""}>{_e(m.title())}</option>'
        for m in options)
    pick = ('<label>Municipality <select name="municipality" onchange="this.form.submit()">'
            f'<option value="">All five</option>{selector}</select></label> ') if len(options) > 1 else ""
    combined = (f'<form method="get" class="pick">{pick}<label>Year <input type="number" name="year" '
                f'value="{year}" min="2000" max="2100" onchange="this.form.submit()"></label>'
                f'{"".join(f"<input type=hidden name=municipality value={_e(m)}>" for m in choice) if not pick else ""}'
                "</form>")
    share = t["outflow_to_work"]["share"]
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>Tweespoor dashboard</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}}
header{{background:#1d2330;color:#fff;padding:14px 24px;display:flex;justify-content:space-between;align-items:center}}
main{{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:18px;padding:18px 24px}}
section{{background:#fff;border-radius:8px;padding:16px 18px;box-shadow:0 1px 3px #0002}}
h2{{font-size:1.05rem;margin:0 0 8px}} .kpis{{display:flex;gap:24px;padding:0 24px;margin-top:16px}}
.kpi{{background:#fff;border-radius:8px;padding:10px 16px;box-shadow:0 1px 3px #0002}}
.kpi b{{display:block;font-size:1.6rem}} svg{{width:100%;height:auto}}
.label{{font-size:13px;fill:#333}} .value{{font-size:12px;fill:#555}}
.marker{{stroke:#c0392b;stroke-width:3;stroke-dasharray:4 2}}
.grid{{stroke:#ddd}} .unknown{{fill:#c5cad3}} .hit{{fill:transparent}} .inside{{font-size:12px;fill:#fff}}
.share-employed-of-reached{{pointer-events:none;fill:none;stroke:#2e8b57;stroke-width:3}}
.share-employed-of-known{{pointer-events:none;fill:none;stroke:#1b5e8c;stroke-width:2;stroke-dasharray:6 3}}
table{{border-collapse:collapse;margin-top:6px}} td,th{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}}
summary{{cursor:pointer;color:#1b5e8c}} .pick{{margin:0}} a{{color:#fff}}
</style></head><body>
<header><strong>Tweespoor — {_e(", ".join(m.title() for m in figures["municipalities"]) or "no municipality")}, {year}</strong>
<span>{combined} signed in as {_e(who)} · <a href="/dashboard/logout">sign out</a></span></header>
<div class="kpis">
<div class="kpi" data-testid="kpi-referred"><b>{t["referred"]}</b>referred</div>
<div class="kpi" data-testid="kpi-placed"><b>{t["trajectories"]["placed"]}</b>placed in a job</div>
<div class="kpi" data-testid="kpi-outflow"><b>{"–" if share is None else f"{share:.0%}"}</b>outflow to work</div>
<div class="kpi" data-testid="kpi-overdue"><b>{c["check_ins_overdue"]}</b>check-ins overdue</div>
<div class="kpi" data-testid="kpi-waiting"><b>{waiting}</b>waiting for a provider</div>
</div>
<main>
<section><h2>From referral to a lasting job</h2>{_bars(funnel, test_id="funnel")}
{_table(["step", "people"], [[label, v] for label, v, _ in funnel], "funnel-numbers")}</section>
<section><h2>Trajectories against the contract</h2>{_bars(volumes, test_id="volumes")}
<p><small>Red marks: the contracted yearly volume of the five municipalities together.</small></p>
{_table(["programme", "trajectories", "contracted"], [[label, v, m or ""] for label, v, m in volumes], "volume-numbers")}</section>
<section><h2>Budget used</h2>{_bars(budget_bars, unit=" k€", test_id="budget")}
<p><small>Committed by the trajectories referred in {year} (each assignment at its contract's tariff); red marks: the budget of the municipalities in view over the whole contract, split over ESF-3 and the WWB work budget.</small></p>
{_table(["budget", "source", "used (€)", "budget (€)"], budget_rows, "budget-numbers")}</section>
<section><h2>Still employed after twelve months</h2>{_bars(retention, test_id="retention")}
<p data-testid="retention-share">{_e(_known(twelve))}</p>
<p><small>Employed or not only with evidence: the employment registry, the employer, a contact from six weeks before the point to two weeks after it, or a job loss the coach reported; otherwise unknown.</small></p>
{_table(["outcome", "people"], [[label, v] for label, v, _ in retention], "retention-numbers")}
{_table(["after the placement", "reached", "employed", "not employed", "unknown", "employed of known"], points, "outcome-numbers")}</section>
{survival}<section><h2>Where the LBU cohort's unknown destinations went</h2>{_destinations(destinations)}
<p><small>Those who refused a job offered under the LBU and whose destination became unknown, 3, 6 and 12 months after the refusal: working (the employment registry), back on a benefit (the benefit administration, or they came back for one) or still unknown.</small></p>
{_table(["after the refusal", "reached", "working", "back on a benefit", "still unknown"], destination_rows, "destination-numbers")}</section>
<section><h2>Placed, per provider</h2>{_bars(provider_bars, unit="%", test_id="providers")}
{_table(["provider", "discipline", "assigned", "placed", "employed after 12 months", "unknown after 12 months"], [[r["provider"], r["discipline"], r["assigned"], r["placed"], r["retained_after_12_months"], r["unknown_after_12_months"]] for r in providers], "provider-numbers")}</section>
</main></body></html>"""


LOGIN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in — Tweespoor</title>
<style>body{{font-family:system-ui,sans-serif;display:grid;place-items:center;height:100vh;background:#f5f6f8}}
form{{background:#fff;padding:24px;border-radius:8px;box-shadow:0 1px 3px #0002;min-width:360px}}
input{{width:100%;padding:8px;margin:8px 0}} p.error{{color:#c0392b}}</style></head><body>
<form method="post" action="/dashboard/login"><h1>Tweespoor</h1>{error}
<label>Your municipality's access token<input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Sign in</button></form></body></html>"""


def install_dashboard(api: FastAPI, store: ReportingStore, credentials: Credentials,
                      today=dt.date.today) -> None:
    def signed_in(request: Request) -> Principal | None:
        token = request.cookies.get(COOKIE)
        principal = credentials.authenticate(token) if token else None
        return principal if principal and principal.may("dashboard:read") else None

    @api.get("/dashboard/login", response_class=HTMLResponse)
    def login_page(error: bool = False) -> str:
        return LOGIN.format(error='<p class="error">That token does not open the dashboard.</p>' if error else "")

    @api.post("/dashboard/login")
    def login(token: Annotated[str, Form(max_length=200)]) -> Response:
        principal = credentials.authenticate(token)
        if not principal or not principal.may("dashboard:read"):
            return RedirectResponse("/dashboard/login?error=true", status_code=303)
        response = RedirectResponse("/dashboard", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=8 * 3600)
        return response

    @api.get("/dashboard/logout")
    def logout() -> Response:
        response = RedirectResponse("/dashboard/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @api.get("/dashboard", response_class=HTMLResponse)
    def dashboard(request: Request, municipality: Annotated[str | None, Query(max_length=40)] = None,
                  year: Annotated[int | None, Query(ge=2000, le=2100)] = None) -> Response:
        principal = signed_in(request)
        if principal is None:
            return RedirectResponse("/dashboard/login", status_code=303)
        combined = principal.municipality is None and principal.may("reports:combined")
        options = list(MUNICIPALITIES) if combined else [principal.municipality or ""]
        choice = [municipality] if combined and municipality in MUNICIPALITIES else None
        year = year or today().year
        period = Filters(start=dt.date(year, 1, 1), end=dt.date(year, 12, 31))
        figures = api.state.figures_for(principal, choice, period)
        return HTMLResponse(render(figures, who=principal.id, choice=choice or [], options=options,
                                   year=year))


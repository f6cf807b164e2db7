"""A simulated employment registry (and benefit administration), for tests and the demo.

It reads a request file and writes the answer file, plausibly and reproducibly: the same
seed and request give the same answers, byte for byte. Each person has a stable
propensity to work (drawn from the seed and their BSN), so their answers hang together
over the points; the chance of work rises after an LBU refusal (many found a job on their
own) and falls slowly after a placement. Whoever works has one employer and a number of
hours; whoever does not is often back on a benefit, and a few part-timers get a top-up.
The period is the calendar month of the point (a payroll month).

    uv run python -m intake.simulated_registry --seed 7 request.csv > answers.csv
"""

from __future__ import annotations

import argparse
import calendar
import hashlib
import sys
import uuid

from intake.registry import AnswerLine
from intake.registry_files import read_request, write_answers

# Chance of being employed at a point; chance of a benefit when not employed.
EMPLOYED = {"lbu-3-months": 0.40, "lbu-6-months": 0.46, "lbu-12-months": 0.52,
            "placement-6-months": 0.78, "placement-12-months": 0.70, "placement-24-months": 0.64}
BENEFIT_WHEN_IDLE = {"lbu": 0.35, "placement": 0.60}
HOURS = (12, 16, 20, 24, 28, 32, 36, 38, 40)


def _uniform(*parts: object) -> float:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def answer_line(seed: int, request_id: uuid.UUID, line: int, bsn: str, point: str,
                observe_on) -> AnswerLine:  # noqa: ANN001 - a date
    propensity = _uniform(seed, bsn, "propensity")
    employed = propensity < EMPLOYED.get(point, 0.5)
    employer_id = hours = None
    if employed:
        employer_id = f"WG{int(_uniform(seed, bsn, 'employer') * 10**6):06d}"
        hours = float(HOURS[int(_uniform(seed, bsn, "hours") * len(HOURS))])
    cohort = point.split("-")[0]
    benefit_draw = _uniform(seed, bsn, point, "benefit")
    on_benefit = benefit_draw < (BENEFIT_WHEN_IDLE.get(cohort, 0.5) if not employed
                                 else 0.15 if hours is not None and hours < 20 else 0.0)
    kind = None
    if on_benefit:
        k = _uniform(seed, bsn, "kind")
        kind = "bijstand" if k < 0.9 else "ioaw" if k < 0.96 else "bbz"
    start = observe_on.replace(day=1)
    end = observe_on.replace(day=calendar.monthrange(observe_on.year, observe_on.month)[1])
    return AnswerLine(0, request_id, line, bsn, employed, employer_id, hours, start, end, on_benefit, kind)


def simulate(request_file: bytes, seed: int) -> bytes:
    """The answer file to a request file."""
    lines, errors = read_request(request_file)
    if errors:
        raise ValueError("not a request file: " + "; ".join(
            f"row {e.row}, {e.field}: {e.reason}" for e in errors[:10]))
    return write_answers([answer_line(seed, request_id, x.line, x.bsn, x.point, x.observe_on)
                          for request_id, x in lines])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Answer an employment-registry request file.")
    parser.add_argument("request", help="the request file (CSV), or - for standard input")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", help="the answer file to write (default: standard output)")
    args = parser.parse_args(argv)
    data = sys.stdin.buffer.read() if args.request == "-" else open(args.request, "rb").read()
    try:
        answers = simulate(data, args.seed)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "wb") as out:
            out.write(answers)
    else:
        sys.stdout.buffer.write(answers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

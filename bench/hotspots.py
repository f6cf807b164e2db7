"""Where the time went, from a py-spy profile in its raw (collapsed stacks) format.

    uv run --group bench py-spy record -r 50 --format raw -o bench/results/rebuild.txt -- \\
        python -m bench --only rebuild --events 200000
    uv run python -m bench.hotspots bench/results/rebuild.txt --within reporting/

py-spy samples every thread, which matters here: the rebuild decodes on the event loop
and writes to the store in a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

LINE = re.compile(r":\d+\)$")


def frames(stack: str) -> list[str]:
    """`fn (file.py:12)` frames without their line numbers, so a function counts once."""
    return [LINE.sub(")", frame) for frame in stack.split(";")]


def summarise(path: Path, within: list[str], top: int) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or (within and not any(w in stack for w in within)):
            continue
        n = int(count)
        total += n
        chain = frames(stack)
        own[chain[-1]] += n
        for frame in set(chain):
            inclusive[frame] += n
    if not total:
        return "no samples matched"
    out = [f"{total} samples" + (f" in stacks through {', '.join(within)}" if within else "")]
    for title, counter in (("self", own), ("inclusive", inclusive)):
        out.append(f"\n{title}:")
        out += [f"{n / total:6.1%}  {frame}" for frame, n in counter.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hotspots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--within", nargs="*", default=[],
                        help="only stacks with a frame containing one of these (a path, a function)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarise(args.profile, args.within, args.top))


if __name__ == "__main__":
    main()

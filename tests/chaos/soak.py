"""A long soak: chaos runs back to back (seed, seed+1, …) for a wall-clock budget, then
one summary table over all of them (faults by kind, txs acknowledged, violations, worst
recovery). Each run is an ordinary `tests.chaos.run` process with its own summary.json.

    python -m tests.chaos.soak --minutes 60 --run-seconds 600 [--first-seed 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

OVERHEAD_S = 90  # start, settle and checks of one run, roughly


def table(summaries: list[dict[str, Any]]) -> str:
    injected: Counter[str] = Counter()
    worst: dict[str, float] = {}
    acked, violations = 0, []
    for s in summaries:
        injected.update(s["injected"])
        for kind, took in s["recovery"]:
            worst[kind] = max(worst.get(kind, 0.0), took)
        acked += int(s["acknowledged"])
        violations += [f"seed {s['seed']}: {v}" for v in s["violations"]]
    lines = [
        f"== soak: {len(summaries)} runs ==",
        f"{'fault kind':<20}{'injected':>9}{'worst recovery':>16}",
    ]
    for kind, count in sorted(injected.items()):
        shown = f"{worst[kind]:.1f}s" if kind in worst else "-"
        lines.append(f"{kind:<20}{count:>9}{shown:>16}")
    lines.append(
        f"faults {sum(injected.values())}, txs acknowledged {acked}, "
        f"violations {len(violations)}, worst recovery {max(worst.values(), default=0):.1f}s"
    )
    lines += [f"  VIOLATION {v}" for v in violations]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--run-seconds", type=float, default=600)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=Path(".chaos/soak"))
    parser.add_argument("--mode", default="auto")
    args = parser.parse_args()
    end = time.monotonic() + args.minutes * 60
    summaries: list[dict[str, Any]] = []
    seed = args.first_seed
    while (left := end - time.monotonic() - OVERHEAD_S) > 60:
        duration = min(args.run_seconds, left)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.chaos.run",
                "--seed",
                str(seed),
                "--duration",
                str(int(duration)),
                "--mode",
                args.mode,
                "--workdir",
                str(args.workdir),
                "--negative-control",
            ],
            check=False,
        )
        summary = args.workdir / f"seed-{seed}" / "summary.json"
        if summary.exists():
            summaries.append(json.loads(summary.read_text()))
        seed += 1
    text = table(summaries)
    print(text, flush=True)
    (args.workdir / "soak-summary.txt").write_text(text + "\n")
    return 1 if "VIOLATION" in text or not summaries else 0


if __name__ == "__main__":
    sys.exit(main())

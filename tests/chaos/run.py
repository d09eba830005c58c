"""One chaos run: real nodes, a steady load, a seeded fault schedule, then the checker.

    python -m tests.chaos.run --seed 7 --duration 120 [--mode auto|netns|loopback]

Exit status 0 when the checker found nothing (and, with --negative-control, caught the
forged history), 1 on any violation. The summary table goes to stdout and, as JSON, to
WORKDIR/seed-N/summary.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from almoner.consensus import proposer_index
from tests.chaos.checker import (
    check_histories,
    collect,
    committed_evidence,
    forge,
    run_cli_checks,
)
from tests.chaos.cluster import ChaosCluster, libfaketime
from tests.chaos.load import Load
from tests.chaos.netlab import Lab, NetId, make_lab
from tests.chaos.schedule import KINDS, Fault, build_schedule

NAMES = [f"validator-{i}" for i in range(4)]
BYZANTINE = "validator-3"
SETTLE_S = 90.0


@dataclass
class Report:
    seed: int
    mode: str
    injected: Counter[str] = field(default_factory=Counter)
    recovery: list[tuple[str, float]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    byzantine: list[dict[str, object]] = field(default_factory=list)


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir: Path = args.workdir / f"seed-{args.seed}"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.lab: Lab = make_lab(args.mode, NAMES, self.dir, NetId(args.net_id))
        disk_node = NAMES[args.seed % 3]
        self.cluster = ChaosCluster(self.dir / "net", self.lab, NAMES, disk_node)
        self.report = Report(args.seed, self.lab.kind)
        self.expected_down: set[str] = set()
        self.culprits: set[str] = set()

    def say(self, line: str) -> None:
        print(line, flush=True)

    # -- the run ------------------------------------------------------------------------
    def kinds(self) -> tuple[str, ...]:
        kinds = list(KINDS)
        if self.cluster.tmpfs is None:
            kinds.remove("disk-full")
            self.report.notes.append("disk-full not run: no tmpfs (needs root)")
        if libfaketime() is None:
            kinds.remove("clock-skew")
            self.report.notes.append("clock-skew not run: libfaketime missing")
        if self.lab.delay_kind == "slow":
            self.report.notes.append("kernel has no sch_netem: delay is a tbf slow link")
        return tuple(kinds)

    def execute(self) -> Report:
        self.lab.setup()
        self.cluster.configure()
        for name in NAMES:
            self.cluster.start(name)
        self.cluster.wait_healthy(NAMES)
        schedule = build_schedule(
            self.args.seed, self.args.duration, NAMES, self.kinds(), self.args.max_fault
        )
        self.say(
            f"chaos seed {self.args.seed}: {self.lab.kind} mode, {len(schedule)} faults "
            f"over {self.args.duration:.0f}s, run dir {self.dir}"
        )
        urls = {n: self.cluster.url(n) for n in NAMES}
        self.load = Load(self.cluster.root, self.cluster.genesis.chain_id, urls, self.args.seed)
        self.load.start()
        t0 = time.monotonic()
        for planned in schedule:
            fault = planned
            if fault.kind == "disk-full" and self.cluster.disk_node is not None:
                fault = dataclasses.replace(fault, target=self.cluster.disk_node)
            if fault.kind.startswith("byz-"):
                fault = dataclasses.replace(fault, target=BYZANTINE)
            self.idle_until(t0 + fault.start)
            self.say("  " + fault.describe())
            self.inject(fault)
            self.report.injected[self.kind_name(fault.kind)] += 1
            self.measure_recovery(fault.kind)
        self.idle_until(t0 + self.args.duration)
        self.load.stop()
        self.settle()
        self.check()
        return self.report

    def kind_name(self, kind: str) -> str:
        return "slow-link" if kind == "delay" and self.lab.delay_kind == "slow" else kind

    def idle_until(self, when: float) -> None:
        while time.monotonic() < when:
            self.watch_crashes()
            time.sleep(0.25)

    def watch_crashes(self) -> None:
        for name in NAMES:
            if name not in self.expected_down and not self.cluster.alive(name):
                status = self.cluster.procs[name].returncode
                self.report.violations.append(f"{name} exited on its own (status {status})")
                self.say(f"  ! {name} exited with {status}; restarting it")
                self.cluster.start(name)

    # -- faults -------------------------------------------------------------------------
    def hold(self, seconds: float) -> None:
        self.idle_until(time.monotonic() + seconds)

    def inject(self, fault: Fault) -> None:
        lab, kind, target = self.lab, fault.kind, fault.target
        if kind in ("partition-2-2", "partition-1-3", "isolate-proposer", "one-way"):
            for src, dst in self.cut(fault):
                lab.faults.blocked.add((src, dst))
            lab.apply()
            self.hold(fault.length)
            lab.heal()
        elif kind == "loss":
            lab.faults.loss[target] = fault.params["percent"]
            lab.apply()
            self.hold(fault.length)
            lab.heal()
        elif kind == "delay":
            lab.faults.delay[target] = (fault.params["ms"], fault.params["jitter_ms"])
            lab.apply()
            self.hold(fault.length)
            lab.heal()
        elif kind == "pause":
            self.cluster.send(target, signal.SIGSTOP)
            self.hold(fault.length)
            self.cluster.send(target, signal.SIGCONT)
        elif kind == "kill-restart":
            self.down(target, signal.SIGKILL, fault.length)
        elif kind == "clock-skew":
            self.cluster.skew[target] = f"{fault.params['seconds']:+d}s"
            self.restart(target)
            self.hold(fault.length)
            del self.cluster.skew[target]
            self.restart(target)
        elif kind == "disk-full":
            self.disk_full(fault)
        else:
            self.byzantine(fault)

    def cut(self, fault: Fault) -> list[tuple[str, str]]:
        if fault.kind == "partition-2-2":
            side = {NAMES[0], NAMES[fault.params["with"]]}
            return [(a, b) for a in NAMES for b in NAMES if (a in side) != (b in side)]
        if fault.kind == "one-way":
            dst = NAMES[fault.params["to"]]
            if dst == fault.target:
                dst = NAMES[(NAMES.index(dst) + 1) % len(NAMES)]
            return [(fault.target, dst)]
        alone = fault.target
        if fault.kind == "isolate-proposer":
            heights = [h for n in NAMES if (h := self.cluster.height(n)) is not None]
            alone = NAMES[proposer_index(max(heights, default=0) + 1, 0, len(NAMES))]
            self.say(f"    proposer of the next height: {alone}")
        return [(a, b) for a in NAMES for b in NAMES if a != b and alone in (a, b)]

    def down(self, name: str, sig: int, seconds: float) -> None:
        self.expected_down.add(name)
        self.cluster.stop(name, sig)
        self.hold(seconds)
        self.cluster.start(name)
        self.cluster.wait_healthy([name])
        self.expected_down.discard(name)

    def restart(self, name: str) -> None:
        self.down(name, signal.SIGTERM, 0)

    def disk_full(self, fault: Fault) -> None:
        name = self.cluster.disk_node
        assert name is not None
        self.expected_down.add(name)  # a node may stop when its disk is full: fail-stop
        filler = self.cluster.fill_disk()
        self.say(f"    {name}'s disk is full")
        self.hold(fault.length)
        if filler is not None:
            filler.unlink()
        if not self.cluster.healthy(name):  # fail-stop: the operator frees space, restarts
            status = self.cluster.procs[name].poll()
            how = "still running, unhealthy" if status is None else f"exited {status}"
            self.report.notes.append(f"{name} fail-stopped on the full disk ({how}); restarted")
            self.cluster.stop(name)
            self.cluster.start(name)
        self.cluster.wait_healthy([name])
        self.expected_down.discard(name)

    def byzantine(self, fault: Fault) -> None:
        mode = fault.kind.removeprefix("byz-")
        out = self.dir / f"byzantine-{len(self.report.byzantine)}.json"
        targets = [
            arg for n in NAMES if n != BYZANTINE for arg in ("--target", self.cluster.url(n))
        ]
        argv = [
            sys.executable,
            "-m",
            "tests.chaos.byzantine",
            "--devnet",
            str(self.cluster.root),
            "--as",
            BYZANTINE,
            "--mode",
            mode,
            "--seconds",
            str(fault.length),
            "--requests",
            str(fault.params.get("requests", 300)),
            "--seed",
            str(self.args.seed),
            "--report",
            str(out),
            *targets,
        ]
        proc = subprocess.Popen(argv)
        while proc.poll() is None:
            self.watch_crashes()
            time.sleep(0.25)
        if proc.returncode != 0 or not out.exists():
            self.report.violations.append(f"byzantine {mode} process failed ({proc.returncode})")
            return
        report = json.loads(out.read_text())
        self.report.byzantine.append(report)
        bad = {code: n for code, n in report["statuses"].items() if code.startswith("5")}
        if bad:
            self.report.violations.append(f"byzantine {mode}: server errors {bad}")
        if mode == "equivocate":
            self.culprits.add(report["validator"])

    # -- recovery and the end -------------------------------------------------------------
    def heights(self) -> dict[str, int | None]:
        return {n: self.cluster.height(n) for n in NAMES}

    def measure_recovery(self, kind: str) -> None:
        start = time.monotonic()
        mark = max((h for h in self.heights().values() if h is not None), default=0)
        while time.monotonic() - start < self.args.recovery_bound:
            heights = self.heights()
            if all(h is not None and h > mark for h in heights.values()):
                took = time.monotonic() - start
                self.report.recovery.append((self.kind_name(kind), took))
                return
            self.watch_crashes()
            time.sleep(0.25)
        self.report.violations.append(
            f"after {kind}: no new commit on every node within {self.args.recovery_bound:.0f}s "
            f"(heights {self.heights()}, before {mark})"
        )

    def settle(self) -> None:
        deadline = time.monotonic() + SETTLE_S
        target = max(a.height for a in self.load.acks) if self.load.acks else 0
        while time.monotonic() < deadline:
            heights = self.heights()
            if all(h is not None and h >= target for h in heights.values()):
                return
            time.sleep(0.5)
        self.report.violations.append(f"nodes did not reach height {target}: {self.heights()}")

    def check(self) -> None:
        urls = {n: self.cluster.url(n) for n in NAMES}
        for name in NAMES:
            if not self.cluster.healthy(name):
                self.report.violations.append(f"{name} is unhealthy at the end of the run")
        chains = {n: collect(u) for n, u in urls.items()}
        evidence = {n: committed_evidence(u) for n, u in urls.items()}
        found = check_histories(
            chains, self.cluster.genesis, self.load.acks, self.culprits, evidence
        )
        self.report.violations += found
        self.report.violations += run_cli_checks(urls, self.cluster.root / "genesis.json")
        if self.args.negative_control:
            if not self.load.acks:
                self.report.violations.append("negative control: no acknowledged tx to forge")
                return
            forged = forge(chains, self.load.acks)
            caught = check_histories(forged, self.cluster.genesis, self.load.acks)
            if not caught:
                self.report.violations.append("negative control: forged history NOT caught")
            else:
                self.report.notes.append(f"negative control caught: {caught[0]}")
        self.chains_height = {n: len(c) for n, c in chains.items()}

    def cleanup(self) -> None:
        self.cluster.shutdown()
        self.lab.cleanup()


def summary(report: Report, load: Load | None, heights: dict[str, int]) -> str:
    lines = [f"== chaos summary: seed {report.seed}, {report.mode} mode =="]
    lines.append(f"{'fault kind':<20}{'injected':>9}{'worst recovery':>16}")
    worst: dict[str, float] = {}
    for kind, took in report.recovery:
        worst[kind] = max(worst.get(kind, 0.0), took)
    for kind, count in sorted(report.injected.items()):
        shown = f"{worst[kind]:.1f}s" if kind in worst else "-"
        lines.append(f"{kind:<20}{count:>9}{shown:>16}")
    if load is not None:
        lines.append(
            f"txs acknowledged {len(load.acks)} (of {load.submitted} submitted, "
            f"{load.failed} unacknowledged tries, {load.resubmits} acked resubmits)"
        )
    overall = max((t for _, t in report.recovery), default=0.0)
    lines.append(f"final heights {heights}")
    lines.append(f"worst recovery {overall:.1f}s; violations {len(report.violations)}")
    lines += [f"  VIOLATION {v}" for v in report.violations]
    lines += [f"  note: {n}" for n in report.notes]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--mode", choices=("auto", "netns", "loopback"), default="auto")
    parser.add_argument("--workdir", type=Path, default=Path(".chaos"))
    parser.add_argument(
        "--net-id",
        type=int,
        default=0,
        choices=range(250),
        help="run several at once as root with different ids",
    )
    parser.add_argument("--max-fault", type=float, default=None, help="longest fault, s")
    parser.add_argument("--recovery-bound", type=float, default=45)
    parser.add_argument("--negative-control", action="store_true")
    args = parser.parse_args()
    run = Run(args)
    try:
        report = run.execute()
    except Exception as exc:  # a harness failure is a failed run, reported like one
        run.report.violations.append(f"run aborted: {type(exc).__name__}: {exc}")
        report = run.report
    finally:
        run.cleanup()
    text = summary(report, getattr(run, "load", None), getattr(run, "chains_height", {}))
    print(text, flush=True)
    (run.dir / "summary.json").write_text(
        json.dumps(
            {
                "seed": report.seed,
                "mode": report.mode,
                "injected": report.injected,
                "recovery": report.recovery,
                "violations": report.violations,
                "notes": report.notes,
                "acknowledged": len(run.load.acks) if hasattr(run, "load") else 0,
                "byzantine": report.byzantine,
            },
            indent=2,
        )
    )
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())

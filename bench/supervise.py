"""Supervision on a labelled synthetic year: how well the rules and scores find what was
planted, and what supervising costs next to plain `verify`.

Run `python -m bench.supervise [--rebuild]` from the repository root. The ledger
(bench/supervise_ledger.py: 100 charities, 10 platforms, a simulated year of hourly
blocks, about 125,000 txs with planted cases of every rule and 12 planted outlier
charities) is built once, certified by four validators, and cached as an archive under
the temp directory. It prints:

- per rule: planted cases, signals, precision and recall (every signal is matched to a
  planted case by the rule's key; a signal matching none is a false signal on the clean
  part);
- the ROC AUC of the anomaly score (robust and, when scikit-learn is installed,
  IsolationForest), with the rows (charity, month) of planted outlier charities positive;
- txs/s and peak RSS of `verify` and of `supervise` over the same archive, each in a
  fresh process, on the first half of the chain and on all of it (memory should not grow
  with the chain; the supervise rate should be at least half of verify's).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from almoner.node.audit.archive import ArchiveReader, ArchiveWriter
from almoner.node.audit.supervise.engine import supervise
from almoner.node.audit.verify import verify_chain
from almoner.node.chain.codec import H, encode
from almoner.node.chain.store import LevelStore
from almoner.node.chain.supervision.features import FeatureRow
from almoner.node.chain.supervision.scores import MissingExtra, score_rows
from bench.supervise_ledger import generate, signal_key
from tests.localchain import LocalChain

CACHE_VERSION = 2


def cache_dir() -> Path:
    folder = Path(tempfile.gettempdir()) / "almoner-bench"
    folder.mkdir(exist_ok=True)
    return folder


def build(archive: Path, labels: Path) -> None:
    started = time.perf_counter()
    labelled = generate()
    print(f"  generated {labelled.txs:,} txs in {time.perf_counter() - started:.0f}s")
    with tempfile.TemporaryDirectory(prefix="almoner-bench-supervise-") as scratch:
        chain = LocalChain(labelled.genesis, labelled.keys.validators, LevelStore(scratch))
        head = {"height": len(labelled.blocks), "log_size": labelled.txs}
        writer = ArchiveWriter(archive, labelled.genesis, head=head, source="bench/supervise.py")
        for n, (time_ms, txs) in enumerate(labelled.blocks, 1):
            block, cert = chain.add_block(txs, time_ms, signed_ids={H(raw) for raw in txs})
            writer.add(encode({"block": block, "commit": cert}))
            if n % 1000 == 0:
                print(f"  certified {n:,} blocks ({time.perf_counter() - started:.0f}s)")
        writer.close()
        chain.ledger.store.close()
    labels.write_text(
        json.dumps(
            {
                "planted": sorted([list(k) for k in labelled.planted]),
                "outliers": sorted(labelled.outliers),
                "txs": labelled.txs,
                "blocks": len(labelled.blocks),
            }
        )
    )


def child(mode: str, archive: Path, blocks: int | None, out: Path) -> None:
    """One measured run in this (fresh) process."""
    reader = ArchiveReader(archive)
    items = reader.items() if blocks is None else itertools.islice(reader.items(), blocks)
    started = time.perf_counter()
    if mode == "verify":
        report = verify_chain(reader.genesis, items, jobs=1)
        txs, ok, result = report.txs, report.ok, None
    else:
        sup = supervise(reader.genesis, items, jobs=1)
        txs, ok, result = sup.verify.txs, sup.verify.ok, sup.to_json()
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.write_text(
        json.dumps(
            {
                "txs": txs,
                "ok": ok,
                "elapsed": elapsed,
                "peak_mib": peak_kib / 1024,
                "report": result,
            }
        )
    )


def measure(mode: str, archive: Path, blocks: int | None) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        args = [sys.executable, "-m", "bench.supervise", "--child", mode, "--archive", str(archive)]
        if blocks is not None:
            args += ["--blocks", str(blocks)]
        subprocess.run([*args, "--out", out.name], check=True)
        result: dict[str, Any] = json.loads(Path(out.name).read_text())
    return result


def auc(scores: list[float], positive: list[bool]) -> float:
    """ROC AUC as the Mann-Whitney probability (ties count half)."""
    pos = [s for s, p in zip(scores, positive, strict=True) if p]
    neg = [s for s, p in zip(scores, positive, strict=True) if not p]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def quality(report: dict[str, Any], labels: dict[str, Any]) -> None:
    planted = {tuple(k) for k in labels["planted"]}
    rules = sorted({k[0] for k in planted} | {s["rule"] for s in report["signals"]})
    print(
        f"\n{'rule':<31}{'planted':>8}{'signals':>9}{'found':>7}{'false':>7}"
        f"{'precision':>11}{'recall':>8}"
    )
    for rule in rules:
        mine = {k for k in planted if k[0] == rule}
        keys = [signal_key(s) for s in report["signals"] if s["rule"] == rule]
        found = mine & set(keys)
        false = [k for k in keys if k not in mine]
        precision = (len(keys) - len(false)) / len(keys) if keys else 1.0
        recall = len(found) / len(mine) if mine else 1.0
        print(
            f"{rule:<31}{len(mine):>8}{len(keys):>9}{len(found):>7}{len(false):>7}"
            f"{precision:>11.2f}{recall:>8.2f}"
        )
    rows = [
        FeatureRow(
            bytes.fromhex(f["party"]),
            f["period"],
            0,
            0,
            {k: v for k, v in f.items() if k not in ("party", "period")},
        )
        for f in report["features"]
    ]
    outliers = set(labels["outliers"])
    positive = [row.charity.hex() in outliers for row in rows]
    print(f"\nanomaly scores: {len(rows)} charity-months, {sum(positive)} of planted outliers")
    for method in ("robust", "isolation-forest"):
        try:
            scored = score_rows(rows, method)
        except MissingExtra as exc:
            print(f"  {method:<17} skipped: {exc}")
            continue
        value = auc([s.score for s in scored], positive)
        print(f"  {method:<17} ROC AUC {value:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--child", choices=["verify", "supervise"])
    parser.add_argument("--archive", type=Path)
    parser.add_argument("--blocks", type=int)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.archive, args.blocks, args.out)
        return
    archive = cache_dir() / f"supervise-v{CACHE_VERSION}.almoner"
    labels_path = cache_dir() / f"supervise-v{CACHE_VERSION}.labels.json"
    if args.rebuild or not archive.exists() or not labels_path.exists():
        print("building the labelled ledger (once; cached)")
        build(archive, labels_path)
    labels = json.loads(labels_path.read_text())
    head: int = labels["blocks"]
    print(
        f"ledger: {labels['txs']:,} txs in {head:,} blocks; {len(labels['planted'])} "
        f"planted cases; {len(labels['outliers'])} outlier charities"
    )
    runs = {}
    for mode in ("verify", "supervise"):
        for blocks in (head // 2, None):
            runs[(mode, blocks)] = measure(mode, archive, blocks)
    print(f"\n{'run':<28}{'txs':>10}{'seconds':>9}{'txs/s':>9}{'peak RSS MiB':>14}")
    for (mode, blocks), r in runs.items():
        label = f"{mode} ({'all' if blocks is None else 'half'} of the chain)"
        print(
            f"{label:<28}{r['txs']:>10,}{r['elapsed']:>9.1f}{r['txs'] / r['elapsed']:>9,.0f}"
            f"{r['peak_mib']:>14.0f}"
        )
    full_v, full_s = runs[("verify", None)], runs[("supervise", None)]
    share = (full_s["txs"] / full_s["elapsed"]) / (full_v["txs"] / full_v["elapsed"])
    print(f"supervise runs at {share:.0%} of verify's rate (aim: at least 50%)")
    quality(full_s["report"], labels)


if __name__ == "__main__":
    main()

"""A tiny Prometheus text-format registry: counters, gauges and latency histograms.

Small enough to read in one sitting, and it keeps the node free of a metrics dependency.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.gauges: dict[str, Callable[[], float]] = {}
        self.histograms: dict[tuple[str, tuple[tuple[str, str], ...]], Histogram] = {}
        self.families: dict[str, Callable[[], dict[tuple[tuple[str, str], ...], float]]] = {}
        self.help: dict[str, str] = {}

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        self.counters[key] = self.counters.get(key, 0) + amount

    def gauge(self, name: str, read: Callable[[], float], help_text: str = "") -> None:
        self.gauges[name] = read
        if help_text:
            self.help[name] = help_text

    def gauge_family(
        self,
        name: str,
        read: Callable[[], dict[tuple[tuple[str, str], ...], float]],
        help_text: str = "",
    ) -> None:
        """A gauge with labels, read at scrape time (e.g. one series per peer)."""
        self.families[name] = read
        if help_text:
            self.help[name] = help_text

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        if key not in self.histograms:
            self.histograms[key] = Histogram()
        self.histograms[key].observe(value)

    def render(self) -> str:
        lines: list[str] = []
        for name, read in sorted(self.gauges.items()):
            if name in self.help:
                lines.append(f"# HELP {name} {self.help[name]}")
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {read():g}")
        for name, read_family in sorted(self.families.items()):
            if name in self.help:
                lines.append(f"# HELP {name} {self.help[name]}")
            lines.append(f"# TYPE {name} gauge")
            for labels, value in sorted(read_family().items()):
                lines.append(f"{name}{_labels(labels)} {value:g}")
        typed: set[str] = set()
        for (name, labels), value in sorted(self.counters.items()):
            if name not in typed:
                lines.append(f"# TYPE {name} counter")
                typed.add(name)
            lines.append(f"{name}{_labels(labels)} {value:g}")
        for (name, labels), hist in sorted(self.histograms.items()):
            if name not in typed:
                lines.append(f"# TYPE {name} histogram")
                typed.add(name)
            cumulative = 0
            for bound, count in zip(hist.buckets, hist.counts, strict=False):
                cumulative += count
                le = (*labels, ("le", f"{bound:g}"))
                lines.append(f"{name}_bucket{_labels(le)} {cumulative}")
            le = (*labels, ("le", "+Inf"))
            lines.append(f"{name}_bucket{_labels(le)} {hist.count}")
            lines.append(f"{name}_sum{_labels(labels)} {hist.total:g}")
            lines.append(f"{name}_count{_labels(labels)} {hist.count}")
        return "\n".join(lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

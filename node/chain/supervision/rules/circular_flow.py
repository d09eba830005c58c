"""Transfers that bring money back to a charity it left, within N days.

Charity-level: A → B → … → A, each transfer no earlier than the one before it, the whole
loop within the window. Money is fungible inside a general fund, so a loop is a loop even
when FIFO lineage says the lots that came back were other donors' money.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from almoner.node.chain.supervision.model import Event, Signal, TxRef
from almoner.node.chain.supervision.money import major_text, spoken
from almoner.node.chain.supervision.periods import DAY_MS
from almoner.node.chain.supervision.rules.base import Context, Rule, duration

MAX_EXPANSIONS = 5_000  # per transfer: a bound on the search, whatever the graph


@dataclass(frozen=True, slots=True)
class _Edge:
    source: bytes
    target: bytes
    time: int
    amount: int
    currency: str
    ref: TxRef


class CircularFlow(Rule):
    name = "circular_flow"

    def __init__(self, settings: dict[str, Any], ctx: Context) -> None:
        super().__init__(settings, ctx)
        self.window = int(settings["days"] * DAY_MS)
        self.out: dict[bytes, deque[_Edge]] = {}
        self.next_sweep = 0

    def _recent(self, node: bytes, since: int) -> deque[_Edge]:
        edges = self.out.get(node)
        if edges is None:
            return deque()
        while edges and edges[0].time < since:
            edges.popleft()
        if not edges:
            del self.out[node]
        return edges

    def on_time(self, now: int) -> list[Signal]:
        """Drop edges older than the window once per window, so memory follows it."""
        if now >= self.next_sweep:
            for node in list(self.out):
                self._recent(node, now - self.window)
            self.next_sweep = now + self.window
        return []

    def _loop(self, closing: _Edge) -> list[_Edge] | None:
        """The shortest time-ordered path target → … → source within the window."""
        start = closing.target
        since = closing.time - self.window
        frontier: deque[tuple[bytes, int, list[_Edge]]] = deque([(start, since, [])])
        expansions = 0
        while frontier and expansions < MAX_EXPANSIONS:
            node, after, path = frontier.popleft()
            if len(path) >= self.settings["max_hops"] - 1:
                continue
            for edge in list(self._recent(node, since)):
                expansions += 1
                if edge.time < after or edge.target in {e.source for e in path}:
                    continue
                step = [*path, edge]
                if edge.target == closing.source:
                    return step
                frontier.append((edge.target, edge.time, step))
        return None

    def on_event(self, event: Event) -> list[Signal]:
        body = event.body
        if event.tx_type != "funds.transfer" or body["to"] == event.signer:
            return []
        edge = _Edge(
            event.signer, body["to"], event.time, body["amount"], body["currency"], event.ref
        )
        found = []
        if edge.amount >= max(1, self.settings["min_amount"]):
            path = self._loop(edge)
            if path is not None:
                found.append(self._signal([*path, edge]))
        self.out.setdefault(edge.source, deque()).append(edge)
        return found

    def _signal(self, loop: list[_Edge]) -> Signal:
        home = loop[0].source
        names = [self.ctx.name(e.source) for e in loop] + [self.ctx.name(home)]
        route = " → ".join(names)
        span = loop[-1].time - loop[0].time
        last = loop[-1]
        en, zh = (spoken(last.amount, last.currency, lang) for lang in ("en", "zh"))
        span_en, span_zh = duration(span)
        return self.signal(
            home,
            "transfer loop",
            (loop[0].time, last.time),
            [e.ref for e in loop],
            (
                f"Money left {names[0]} and came back within {span_en} through "
                f"{len(loop)} transfers: {route} (last transfer {en}).",
                f"资金从“{names[0]}”转出后在 {span_zh}内经 {len(loop)} 笔转账回流："
                f"{route}（最后一笔 {zh}）。",
            ),
            {
                "charities": [e.source.hex() for e in loop],
                "transfers": [
                    {
                        "from": e.source.hex(),
                        "to": e.target.hex(),
                        "amount": e.amount,
                        "amount_major": major_text(e.amount, e.currency),
                        "currency": e.currency,
                    }
                    for e in loop
                ],
                "days": round(span / DAY_MS, 2),
            },
        )

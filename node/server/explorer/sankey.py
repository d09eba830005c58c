"""The fund-flow diagram: a Sankey drawn as inline SVG on the server, no JavaScript needed.

Nodes are placed in columns by the longest path from a source (platforms and donating
charities first, then funds, then funds fed by other funds, then where money ended:
spending categories, refunds, other charities, still held), stacked by value; each edge
is a band whose width is proportional to its amount. Every node and band carries its
amount in data attributes so tests (and curious readers) can check the totals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

WIDTH = 960
NODE_WIDTH = 14
PADDING = 18
LABEL_GAP = 6
COLORS = {
    "platform": "#2f6db5",
    "from": "#7a5bb5",
    "fund": "#1f8a70",
    "category": "#c0712b",
    "refund": "#b5443b",
    "to": "#7a5bb5",
    "held": "#6b7785",
}


@dataclass
class _Node:
    key: str
    label: str
    inflow: int = 0
    outflow: int = 0
    layer: int = 0
    y: float = 0.0
    height: float = 0.0
    next_out: float = 0.0
    next_in: float = 0.0
    edges_out: list[_Edge] = field(default_factory=list)

    @property
    def value(self) -> int:
        return max(self.inflow, self.outflow)

    @property
    def kind(self) -> str:
        return self.key.split(":", 1)[0]


@dataclass
class _Edge:
    source: _Node
    target: _Node
    amount: int


def _node_key(name: str, as_target: bool) -> str:
    """Another charity is drawn once as a source and once as a target: no cycles."""
    if name.startswith("charity:"):
        return ("to:" if as_target else "from:") + name[len("charity:") :]
    return name


def _layers(nodes: dict[str, _Node], edges: list[_Edge]) -> int:
    for _ in range(len(nodes)):  # longest path, bounded: a cycle cannot loop forever
        changed = False
        for edge in edges:
            if edge.target.layer < edge.source.layer + 1:
                edge.target.layer = edge.source.layer + 1
                changed = True
        if not changed:
            break
    last = max((node.layer for node in nodes.values()), default=0)
    for node in nodes.values():
        if not node.edges_out and node.inflow:  # where money ended: the last column
            node.layer = last
    return last


def render_sankey(
    edges: list[dict[str, Any]], label: Callable[[str], str], amount: Callable[[int], str]
) -> Markup:
    nodes: dict[str, _Node] = {}
    links: list[_Edge] = []

    def node(name: str, as_target: bool) -> _Node:
        key = _node_key(name, as_target)
        if key not in nodes:
            nodes[key] = _Node(key, label(name))
        return nodes[key]

    for edge in edges:
        if edge["amount"] <= 0:
            continue
        source, target = node(edge["source"], False), node(edge["target"], True)
        link = _Edge(source, target, edge["amount"])
        source.outflow += link.amount
        target.inflow += link.amount
        source.edges_out.append(link)
        links.append(link)
    if not links:
        return Markup("")
    last = _layers(nodes, links)
    columns: list[list[_Node]] = [[] for _ in range(last + 1)]
    for item in nodes.values():
        columns[item.layer].append(item)
    tallest = max(len(column) for column in columns)
    height = max(240, 60 * tallest)
    biggest = max(sum(n.value for n in column) for column in columns)
    scale = (height - PADDING * (tallest - 1)) / biggest
    step = (WIDTH - 2 * 150 - NODE_WIDTH) / max(last, 1)
    for column in columns:
        column.sort(key=lambda n: -n.value)
        y = 0.0
        for item in column:
            item.y = y
            item.height = max(item.value * scale, 2.0)
            item.next_out = item.next_in = y
            y += item.height + PADDING
    bottom = max(n.y + n.height for n in nodes.values())
    parts = [
        f'<svg data-testid="fund-flow" role="img" viewBox="0 0 {WIDTH} {bottom + 30:.0f}" '
        f'xmlns="http://www.w3.org/2000/svg" class="sankey">'
    ]
    for link in sorted(links, key=lambda e: (e.source.layer, e.source.y, e.target.y)):
        thickness = link.amount * scale
        x0 = 150 + link.source.layer * step + NODE_WIDTH
        x1 = 150 + link.target.layer * step
        y0 = link.source.next_out + thickness / 2
        y1 = link.target.next_in + thickness / 2
        link.source.next_out += thickness
        link.target.next_in += thickness
        middle = (x0 + x1) / 2
        title = escape(f"{link.source.label} → {link.target.label}: {amount(link.amount)}")
        parts.append(
            f'<path class="band band-{link.target.kind}" data-source="{escape(link.source.key)}" '
            f'data-target="{escape(link.target.key)}" data-amount="{link.amount}" '
            f'd="M{x0:.1f},{y0:.1f} C{middle:.1f},{y0:.1f} '
            f'{middle:.1f},{y1:.1f} {x1:.1f},{y1:.1f}" '
            f'stroke="{COLORS.get(link.source.kind, "#888")}" '
            f'stroke-width="{max(thickness, 1.0):.1f}" fill="none"><title>{title}</title></path>'
        )
    for item in nodes.values():
        x = 150 + item.layer * step
        anchor_left = item.layer == 0
        text_x = x - LABEL_GAP if anchor_left else x + NODE_WIDTH + LABEL_GAP
        anchor = "end" if anchor_left else "start"
        text_y = item.y + item.height / 2
        parts.append(
            f'<g class="node" data-node="{escape(item.key)}" data-in="{item.inflow}" '
            f'data-out="{item.outflow}"><rect x="{x:.1f}" y="{item.y:.1f}" width="{NODE_WIDTH}" '
            f'height="{item.height:.1f}" fill="{COLORS.get(item.kind, "#888")}"/>'
            f'<text x="{text_x:.1f}" y="{text_y:.1f}" text-anchor="{anchor}" '
            f'dominant-baseline="middle"><tspan class="node-label">{escape(item.label)}</tspan>'
            f'<tspan x="{text_x:.1f}" dy="1.2em" class="node-amount">'
            f"{escape(amount(item.value))}</tspan></text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))

"""A trace's steps as one span tree on one time axis: the waterfall of the trace page (pure).

Input is read-API event dicts (``Event.to_dict()``) and the thread graph's nodes and turns built from
them (a tool span is one node). Rows come out in display order (a parent before its children) with
their depth, their place on the axis (ms since the trace's first start) and, for a row with children,
the totals of its whole subtree, which a collapsed row still shows.

Nesting, most specific first: a step's ``parentStepId`` (the SDK's, unless it is just the step before,
which the server fills in for any step sent without one; or an OpenTelemetry span's parent);
a tool span under the LLM call before it in its turn (the call that asked for it: proxied tool spans
carry no parent); else the turn. Events of one OpenTelemetry span chain each to the one before; they
are siblings here, not a staircase.
"""

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

TURN = "turn"


@lru_cache(maxsize=4096)
def _ms(ts: str | None) -> float | None:
    # Events of one proxied call share their timestamps: parsed once.
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000 if ts else None


def _latency(event: dict[str, Any]) -> float | None:
    latency = (event.get("metadata") or {}).get("latencyMs")
    return float(latency) if isinstance(latency, (int, float)) and not isinstance(latency, bool) else None


def _tokens(event: dict[str, Any]) -> int:
    tokens = event.get("tokens") or {}
    return sum(tokens.get(key) or 0 for key in ("input", "cacheRead", "cacheWrite", "output"))


def _exchange_starts(events: list[dict[str, Any]]) -> dict[int, float]:
    """When each proxied call began: its earliest event (the request's, stamped with its start)."""
    starts: dict[int, float] = {}
    for event in events:
        exchange, at = event.get("exchangeId"), _ms(event.get("timestamp"))
        if exchange is not None and at is not None:
            starts[exchange] = min(at, starts.get(exchange, at))
    return starts


def _timing(node: dict[str, Any], events: list[dict[str, Any]], exchange_starts: dict[int, float]) -> tuple[float, float, bool]:
    """(start, end, known) of a node in epoch ms: whether its duration was reported or only its moment."""
    first = events[0]
    otel = (first.get("metadata") or {}).get("otel") or {}
    if otel.get("startTime") and otel.get("endTime"):
        return _ms(otel["startTime"]), _ms(otel["endTime"]), True
    at = _ms(first["timestamp"])
    if node["kind"] == "tool":
        latency = node.get("latencyMs")
        if isinstance(latency, (int, float)):
            return at, at + latency, True
        ends = [_ms(event["timestamp"]) for event in events[1:]]
        return at, max(ends, default=at), bool(ends)
    latency = _latency(first)
    if latency is not None:  # an LLM call (or a failed one) ends at its timestamp
        return at - latency, at, True
    began = exchange_starts.get(first.get("exchangeId")) if node["kind"] == "error" else None
    if began is not None and began < at:  # a failed proxied call: from its request to its error
        return began, at, True
    return at, at, False


def _parents(nodes: list[dict[str, Any]], first_events: list[dict[str, Any]]) -> list[int | None]:
    """Each node's parent node (an index before it), or None for one that hangs from its turn."""
    index_of = {node["id"]: i for i, node in enumerate(nodes)}
    parents: list[int | None] = []
    last_llm: dict[int, int] = {}  # per turn, its latest LLM call
    for i, node in enumerate(nodes):
        parent = index_of.get(node.get("parent")) if node.get("parent") is not None else None
        explicit = bool((first_events[i].get("metadata") or {}).get("otel"))
        if parent is not None and (parent >= i or (parent == i - 1 and not explicit)):
            # Later than its child (no cycles), or just the step before: what the server fills in for
            # a step sent without a parent, which says it follows, not that it nests.
            parent = None
        span = first_events[i].get("spanId")
        while parent is not None and span and first_events[parent].get("spanId") == span and node["kind"] != "tool":
            parent = parents[parent]  # the same OpenTelemetry span: a sibling of the event before
        if parent is None and node["kind"] == "tool" and node["turn"] in last_llm:
            parent = last_llm[node["turn"]]
        parents.append(parent)
        if node["kind"] == "llm":
            last_llm[node["turn"]] = i
    return parents


@dataclass
class _Figures:
    """Per row (by number), what it adds up to: its own step's, or with ``add`` its whole subtree's."""

    start: list[float | None]
    end: list[float | None]
    tokens: list[int]
    cost: list[float | None]
    errors: list[int]
    steps: list[int]
    size: list[int]  # rows in the subtree, itself included

    @classmethod
    def empty(cls, turns: int, nodes: int) -> "_Figures":
        count = turns + nodes
        return cls([None] * count, [None] * count, [0] * count, [None] * count, [0] * count,
                   [0] * turns + [1] * nodes, [1] * count)

    def copy(self) -> "_Figures":
        return _Figures(*(list(values) for values in vars(self).values()))

    def add(self, row: int, into: int) -> None:
        if self.start[row] is not None:
            self.start[into] = self.start[row] if self.start[into] is None else min(self.start[into], self.start[row])
            self.end[into] = self.end[row] if self.end[into] is None else max(self.end[into], self.end[row])
        self.tokens[into] += self.tokens[row]
        self.errors[into] += self.errors[row]
        self.steps[into] += self.steps[row]
        self.size[into] += self.size[row]
        if self.cost[row] is not None:
            self.cost[into] = self.cost[row] + (self.cost[into] or 0)


def _depth_first(roots: list[int], children: list[list[int]]) -> tuple[list[int], list[int]]:
    """Display order and depth of each row (iteratively: an SDK's parent chain can be thousands deep)."""
    order: list[int] = []
    depth = [0] * len(children)
    stack = list(reversed(roots))
    while stack:
        row = stack.pop()
        order.append(row)
        for child in reversed(children[row]):
            depth[child] = depth[row] + 1
            stack.append(child)
    return order, depth


def build_tree(events: list[dict[str, Any]], nodes: list[dict[str, Any]], turns: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows in display order and the axis's length; see the module docstring.

    A row: ``id`` (a node id, or ``turn-<index>``), ``node`` (the node it selects, when not its id: a turn's
    first), ``depth``, ``kind``, ``start`` and ``dur`` (ms on the axis), ``known``, ``tokens``, ``cost``,
    ``errors`` (each left out when false, zero or None), ``end`` (the index after its last descendant)
    and, with children, ``total``: ``start``, ``dur``, ``tokens``, ``cost`` (None: no price), ``errors``
    and ``steps`` of the subtree, itself included.
    """
    by_id = {event["id"]: event for event in events}
    node_events = [[by_id[event_id] for event_id in node["eventIds"]] for node in nodes]
    exchange_starts = _exchange_starts(events)
    parents = _parents(nodes, [found[0] for found in node_events])

    # Rows by number: the turns first, then the nodes.
    first_node = len(turns)
    own = _Figures.empty(first_node, len(nodes))
    known = [False] * (first_node + len(nodes))
    children: list[list[int]] = [[] for _ in known]
    parent_of = [-1] * len(known)
    turn_row = {turn["index"]: row for row, turn in enumerate(turns)}
    roots = list(range(first_node))
    for i, node in enumerate(nodes):
        row = first_node + i
        own.start[row], own.end[row], known[row] = _timing(node, node_events[i], exchange_starts)
        for event in node_events[i]:
            own.tokens[row] += _tokens(event)
            if event.get("costUsd") is not None:
                own.cost[row] = (own.cost[row] or 0) + event["costUsd"]
        own.errors[row] = int(node["kind"] == "error")
        parent = first_node + parents[i] if parents[i] is not None else turn_row.get(node["turn"])
        if parent is None:
            roots.append(row)
        else:
            children[parent].append(row)
            parent_of[row] = parent

    # A turn whose steps all nest elsewhere (their OpenTelemetry parents are in an earlier turn) is left out.
    order, depth = _depth_first([root for root in roots if children[root] or root >= first_node], children)
    whole = own.copy()
    for row in reversed(order):  # children before parents
        if parent_of[row] >= 0:
            whole.add(row, parent_of[row])

    origin = min((whole.start[row] for row in order if whole.start[row] is not None), default=0.0)

    def at(value: float | None) -> float | None:
        return round(value - origin, 1) if value is not None else None

    out: list[dict[str, Any]] = []
    for position, row in enumerate(order):
        # What a row lacks is its default (node: its id; known: False; tokens, errors: 0; cost: None):
        # 5,000 rows are a tenth of the page otherwise.
        if row < first_node:
            turn = turns[row]
            item = {"id": f"turn-{turn['index']}", "node": turn["first"], "kind": TURN, "label": turn["label"],
                    "number": turn["number"]}
        else:
            node = nodes[row - first_node]
            item = {"id": node["id"], "kind": node["kind"], "known": known[row], "tokens": own.tokens[row],
                    "cost": own.cost[row], "errors": own.errors[row]}
            item = {key: value for key, value in item.items() if value or key in ("id", "kind")}
        timed = own.start[row] is not None
        item.update(depth=depth[row], start=at(own.start[row]), dur=round(own.end[row] - own.start[row], 1) if timed else 0,
                    end=position + whole.size[row])  # a subtree is contiguous in depth-first order
        if children[row]:
            timed = whole.start[row] is not None
            item["total"] = {"start": at(whole.start[row]),
                             "dur": round(whole.end[row] - whole.start[row], 1) if timed else 0,
                             "tokens": whole.tokens[row], "cost": whole.cost[row], "errors": whole.errors[row],
                             "steps": whole.steps[row]}
        out.append(item)
    ends = [whole.end[row] for row in order if whole.end[row] is not None]
    # origin: the axis's 0 in epoch ms, where a page places a call still running (live).
    return {"rows": out, "totalMs": round(max(ends) - origin, 1) if ends else 0, "origin": round(origin, 1)}

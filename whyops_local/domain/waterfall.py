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

    # The tree: turn rows first, then each node under its parent (a node or its turn).
    rows: list[dict[str, Any]] = []
    children: list[list[int]] = []
    turn_row: dict[int, int] = {}
    for turn in turns:
        turn_row[turn["index"]] = len(rows)
        rows.append({"id": f"turn-{turn['index']}", "node": turn["first"], "kind": TURN, "label": turn["label"],
                     "number": turn["number"], "start": None, "end_ms": None, "known": False, "tokens": 0,
                     "cost": None, "errors": 0})
        children.append([])
    roots = list(turn_row.values())
    row_of_node: list[int] = []
    for i, node in enumerate(nodes):
        start, end, known = _timing(node, node_events[i], exchange_starts)
        costs = [event["costUsd"] for event in node_events[i] if event.get("costUsd") is not None]
        row_of_node.append(len(rows))
        rows.append({"id": node["id"], "node": node["id"], "kind": node["kind"], "start": start, "end_ms": end,
                     "known": known, "tokens": sum(_tokens(event) for event in node_events[i]),
                     "cost": sum(costs) if costs else None, "errors": int(node["kind"] == "error")})
        children.append([])
        parent = row_of_node[parents[i]] if parents[i] is not None else turn_row.get(node["turn"])
        (children[parent] if parent is not None else roots).append(row_of_node[-1])

    # Display order, depth first (iteratively: an SDK's parent chain can be thousands deep).
    order: list[int] = []
    depth = [0] * len(rows)
    # A turn whose steps all nest elsewhere (their OpenTelemetry parents are in an earlier turn) is left out.
    stack = [root for root in reversed(roots) if children[root] or rows[root]["kind"] != TURN]
    while stack:
        row = stack.pop()
        order.append(row)
        for child in reversed(children[row]):
            depth[child] = depth[row] + 1
            stack.append(child)

    # Subtree totals, children before parents.
    totals = [{"start": r["start"], "end": r["end_ms"], "tokens": r["tokens"], "cost": r["cost"],
               "errors": r["errors"], "steps": int(r["kind"] != TURN), "rows": 1} for r in rows]
    parent_of = {child: row for row, kids in enumerate(children) for child in kids}
    for row in reversed(order):
        parent = parent_of.get(row)
        if parent is None:
            continue
        mine, theirs = totals[row], totals[parent]
        if mine["start"] is not None:
            theirs["start"] = mine["start"] if theirs["start"] is None else min(theirs["start"], mine["start"])
            theirs["end"] = mine["end"] if theirs["end"] is None else max(theirs["end"], mine["end"])
        theirs["tokens"] += mine["tokens"]
        theirs["errors"] += mine["errors"]
        theirs["steps"] += mine["steps"]
        theirs["rows"] += mine["rows"]
        if mine["cost"] is not None:
            theirs["cost"] = mine["cost"] + (theirs["cost"] or 0)

    starts = [t["start"] for t in totals if t["start"] is not None]
    origin = min(starts, default=0.0)
    out: list[dict[str, Any]] = []
    for n, row in enumerate(order):
        source, total = rows[row], totals[row]
        # What a row lacks is its default (node: its id; tokens, errors: 0; cost: None; known: False):
        # 5,000 rows are a tenth of the page otherwise.
        item = {key: value for key, value in source.items()
                if value and key not in ("start", "end_ms") and not (key == "node" and value == source["id"])}
        item["depth"] = depth[row]
        item["start"] = round(source["start"] - origin, 1) if source["start"] is not None else None
        item["dur"] = round(source["end_ms"] - source["start"], 1) if source["start"] is not None else 0
        item["end"] = n + total["rows"]  # a subtree is contiguous in depth-first order
        if children[row]:
            item["total"] = {"start": round(total["start"] - origin, 1) if total["start"] is not None else None,
                             "dur": round(total["end"] - total["start"], 1) if total["start"] is not None else 0,
                             "tokens": total["tokens"], "cost": total["cost"], "errors": total["errors"],
                             "steps": total["steps"]}
        out.append(item)
    ends = [t["end"] for t in totals if t["end"] is not None]
    # origin: the axis's 0 in epoch ms, where a page places a call still running (live).
    return {"rows": out, "totalMs": round(max(ends) - origin, 1) if ends else 0, "origin": round(origin, 1)}

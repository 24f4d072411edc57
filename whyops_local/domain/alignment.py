"""Two runs side by side: their steps aligned by a longest common subsequence of signatures (pure).

A step's signature is what should repeat when an agent does the same thing again: its kind, a tool
call's name and arguments, an LLM call's model and the names of the tools it asked for, a user
message's text. Answer texts are left out (they vary run to run); aligned answers that differ get a
text diff. A tool span's response is folded into its request (one step).
"""

import difflib
from typing import Any

from . import jsontext
from .context import message_text
from .flags import answer_text, tool_calls_signature

# Past this many steps that only one run has, runs are matched by difflib's longest matching blocks
# (fast, close to an LCS): an exact one would cost (N+M) x D.
MAX_DIFFERENCES = 1000


def _last_user_text(content: Any) -> str:
    messages = content.get("messages") if isinstance(content, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message)
    return ""


def step_of(event: dict[str, Any]) -> dict[str, Any]:
    """A compare row's step from a read-API event dict (with ``signature``, dropped before answering)."""
    kind, content, metadata = event["eventType"], event.get("content"), event.get("metadata") or {}
    body = content if isinstance(content, dict) else {}
    step = {"stepId": event["stepId"], "eventType": kind, "name": None, "text": ""}
    if kind == "user_message":
        step["text"] = _last_user_text(content)
        signature = [kind, step["text"]]
    elif kind == "llm_response":
        calls = tool_calls_signature(body.get("toolCalls"))
        step["name"], step["text"] = metadata.get("model"), answer_text(content)
        step["toolCalls"] = [name for name, _ in calls]
        signature = [kind, step["name"], step["toolCalls"]]
    elif kind in ("tool_call_request", "tool_call"):
        calls = tool_calls_signature(body.get("toolCalls"))
        step["name"] = metadata.get("tool")
        step["text"] = jsontext.dumps(calls[0][1]) if calls else ""
        signature = ["tool", step["name"], calls]
    elif kind == "tool_result":
        step["name"] = body.get("toolName")
        signature = [kind, step["name"]]
    elif kind == "embedding_response":
        step["name"] = metadata.get("model")
        signature = [kind, step["name"]]
    else:
        if kind == "error":
            step["text"] = str(body.get("message") or "")[:200]
        signature = [kind]
    step["signature"] = jsontext.dumps(signature)
    return step


def steps_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The comparable steps of a run, in step order: every event but a tool span's response."""
    return [step_of(event) for event in events if event["eventType"] != "tool_call_response"]


def _myers(a: list[str], b: list[str], max_d: int) -> list[tuple[int, int]] | None:
    """An exact LCS by Myers' O((N+M)D) diff, D the number of steps only one side has; None past ``max_d``.

    Runs of one agent differ in few places, so D stays small where a table would take N x M cells.
    """
    n, m = len(a), len(b)
    v, trace = {1: 0}, []
    for d in range(max_d + 1):
        trace.append(dict(v))
        for k in range(-d, d + 1, 2):
            x = v[k + 1] if k == -d or (k != d and v[k - 1] < v[k + 1]) else v[k - 1] + 1
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x, y = x + 1, y + 1
            v[k] = x
            if x >= n and y >= m:
                return _backtrack(trace, n, m)
    return None


def _backtrack(trace: list[dict[int, int]], x: int, y: int) -> list[tuple[int, int]]:
    pairs = []
    for d in range(len(trace) - 1, 0, -1):
        v, k = trace[d], x - y
        previous_k = k + 1 if k == -d or (k != d and v[k - 1] < v[k + 1]) else k - 1
        previous_x = v[previous_k]
        previous_y = previous_x - previous_k
        while x > previous_x and y > previous_y:  # the diagonal after this step's one edit
            x, y = x - 1, y - 1
            pairs.append((x, y))
        x, y = previous_x, previous_y
    while x > 0 and y > 0:
        x, y = x - 1, y - 1
        pairs.append((x, y))
    return pairs[::-1]


def matches(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence of ``a`` and ``b`` (close to one for runs far apart)."""
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a, end_b = end_a - 1, end_b - 1
    middle_a, middle_b = a[start:end_a], b[start:end_b]
    middle = _myers(middle_a, middle_b, MAX_DIFFERENCES)
    if middle is None:
        blocks = difflib.SequenceMatcher(None, middle_a, middle_b).get_matching_blocks()
        middle = [(block.a + k, block.b + k) for block in blocks for k in range(block.size)]
    return ([(i, i) for i in range(start)] + [(i + start, j + start) for i, j in middle]
            + [(end_a + k, end_b + k) for k in range(len(a) - end_a)])


def align(a_steps: list[dict[str, Any]], b_steps: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int | None]:
    """Rows ``{"a", "b", "same"}`` (unmatched steps between two matches side by side) and the first divergence."""
    pairs = matches([s["signature"] for s in a_steps], [s["signature"] for s in b_steps])
    rows: list[dict[str, Any]] = []
    i = j = 0
    for next_i, next_j in [*pairs, (len(a_steps), len(b_steps))]:
        left, right = a_steps[i:next_i], b_steps[j:next_j]
        for k in range(max(len(left), len(right))):
            rows.append({"a": left[k] if k < len(left) else None, "b": right[k] if k < len(right) else None,
                         "same": False})
        if next_i < len(a_steps):
            rows.append({"a": a_steps[next_i], "b": b_steps[next_j], "same": True})
        i, j = next_i + 1, next_j + 1
    first = next((index for index, row in enumerate(rows) if not row["same"]), None)
    for row in rows:
        for side in ("a", "b"):
            if row[side] is not None:
                row[side] = {key: value for key, value in row[side].items() if key != "signature"}
    return rows, first


def text_diff(before: str, after: str) -> list[dict[str, str]]:
    """A line diff of two answers: ``{"op": " "|"-"|"+", "text"}`` per line."""
    lines = difflib.ndiff(before.splitlines() or [""], after.splitlines() or [""])
    return [{"op": line[0], "text": line[2:]} for line in lines if line[:1] in (" ", "-", "+")]


def delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """b minus a, over two TraceSummary dicts."""
    cost = None if a["costUsd"] is None or b["costUsd"] is None else round(b["costUsd"] - a["costUsd"], 10)
    return {"durationMs": b["durationMs"] - a["durationMs"], "llmCalls": b["llmCalls"] - a["llmCalls"],
            "toolCalls": b["toolCalls"] - a["toolCalls"], "errors": b["errorCount"] - a["errorCount"],
            "tokens": b["usage"]["totalTokens"] - a["usage"]["totalTokens"], "costUsd": cost}


def compare(a_summary: dict[str, Any], a_events: list[dict[str, Any]], b_summary: dict[str, Any],
            b_events: list[dict[str, Any]]) -> dict[str, Any]:
    """The compare API's answer from two traces' summaries and events (in step order)."""
    rows, first = align(steps_of(a_events), steps_of(b_events))
    return {"a": a_summary, "b": b_summary, "rows": rows, "firstDivergence": first, "delta": delta(a_summary, b_summary)}

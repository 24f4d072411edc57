"""Flags: what in a trace points at the problem, found as each event arrives (pure, no Django).

``observe`` folds one event into a trace's ``state``, a small JSON-ready dict kept on the trace and
saved with its totals in the same commit, so reading a trace's flags costs nothing. The state holds
only what later events are compared with: digests, step ids, sorted durations, open tool calls.
A tool call left open is judged at read time (``dangling``) from the stored open-call timestamps, so
"no response after 10 minutes" needs no scan and no timer.
"""

import bisect
import json
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import jsontext

KINDS = {
    "tool_loop": "Tool loop",
    "repeated_answer": "Repeated answer",
    "error_streak": "Error streak",
    "dangling_tool": "Tool call unanswered",
    "truncated": "Truncated answer",
    "empty_answer": "Empty answer",
    "cache_break": "Cache break",
    "slow_step": "Slow step",
    "double_count": "Counted twice",
}
REPEATS = 3  # tool_loop, repeated_answer, error_streak
DANGLING_AFTER_S = 600
CACHED_ENOUGH = 1024  # cache reads an earlier call must have had before a drop counts as a break
CACHE_DROP = 0.1  # "fell to near zero": under this share of the best earlier read
SLOW_FACTOR, SLOW_MIN_MS = 3, 5000
TRUNCATED_REASONS = {"length", "max_tokens", "max_output_tokens", "MAX_TOKENS"}
MAX_FLAGS = 100
# The state is saved with the trace's totals on every commit, so it stays small whatever the trace's
# length (measured: a 33 KB state cost the ingest benchmark a quarter of its rate):
EXACT_DURATIONS = 50  # per kind, kept exactly; beyond, the median comes from a histogram of 25% buckets
_BUCKET = 1.25
_LOG_BUCKET = math.log(_BUCKET)
TOOL_SIGNATURES = 64  # distinct tool calls remembered, most recent first: a loop repeats while they are
MAX_SLOW_CANDIDATES = 50
_STEPS_KEPT = 20  # step ids kept per repeated signature
_OUTCOMES = ("llm_response", "error", "tool_call_response", "tool_result", "embedding_response")
_REQUESTS = ("user_message", "tool_result")
_TOOL_STARTS = ("tool_call_request", "tool_call")
_OPENING = ("tool_call_request", "tool_call_response", "llm_response")  # the events that open or close calls
_DURATION_KINDS = {"llm_response": "llm", "tool_call_response": "tool", "embedding_response": "embedding"}
_KIND_WORDS = {"llm": "LLM call", "tool": "tool call", "embedding": "embedding call"}


@dataclass(slots=True)
class Step:
    """What the flags need of one stored event."""

    kind: str
    step_id: int
    at: float  # epoch seconds
    source: str = "sdk"
    span_id: str = ""
    content: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    latency_ms: float | None = None
    cache_read: int = 0


def digest(value: Any) -> str:
    """A short fingerprint of a JSON value (crc32: it runs for every message of every request)."""
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    else:
        try:
            data = orjson.dumps(value)
        except TypeError:  # what orjson refuses (see jsontext)
            data = json.dumps(value).encode("utf-8", "surrogatepass")
    return f"{zlib.crc32(data):08x}"


def _flag(kind: str, steps: Iterable[int], message: str) -> dict[str, Any]:
    return {"kind": kind, "stepIds": sorted(set(steps)), "message": message}


def _put(state: dict[str, Any], key: str, flag: dict[str, Any]) -> None:
    flags = state.setdefault("flags", {})
    if key in flags or len(flags) < MAX_FLAGS:
        flags[key] = flag


def _drop(state: dict[str, Any], key: str) -> None:
    state.get("flags", {}).pop(key, None)


def flags_of(state: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The flags found so far, in step order."""
    return sorted((state or {}).get("flags", {}).values(), key=lambda f: (f["stepIds"][:1], f["kind"]))


def kinds_of(flags: Iterable[dict[str, Any]]) -> list[str]:
    found = {f["kind"] for f in flags}
    return [kind for kind in KINDS if kind in found]


# --- reading event content -------------------------------------------------------------------


def _body(step: Step) -> dict[str, Any]:
    return step.content if isinstance(step.content, dict) else {}


def answer_text(content: Any) -> str:
    """The text of an ``llm_response`` content (a string, or text blocks)."""
    text = content.get("content") if isinstance(content, dict) else content
    if isinstance(text, list):
        text = "".join(part["text"] for part in text if isinstance(part, dict) and isinstance(part.get("text"), str))
    return text.strip() if isinstance(text, str) else ""


def tool_calls_signature(calls: Any) -> list[list[Any]]:
    """Tool calls as (name, arguments): without call ids, arguments parsed when they are JSON text."""
    out = []
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else call
        out.append([function.get("name"), jsontext.parsed_or_as_is(function.get("arguments"))])
    return out


def call_names(calls: Any) -> list[str]:
    """The names of tool calls (without reading their arguments)."""
    names = []
    for call in calls if isinstance(calls, list) else []:
        if isinstance(call, dict):
            function = call.get("function") if isinstance(call.get("function"), dict) else call
            names.append(str(function.get("name")))
    return names


def _is_error_result(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    return bool(value.get("error") or value.get("isError") or value.get("is_error") or value.get("status") == "error")


def _is_error(step: Step) -> bool:
    if step.kind == "error":
        return True
    body = _body(step)
    if step.kind == "tool_call_response":
        return _is_error_result(body.get("toolResults"))
    if step.kind == "tool_result":
        return _is_error_result(body.get("output"))
    return False


def _short(value: Any) -> str:
    return digest(value)[:6]


def request_digests(step: Step) -> dict[str, Any] | None:
    """What a request event says of the prompt: short digests of system prompt, tools and each message
    (one string, 6 characters a message), and the role of each message (one letter each)."""
    messages = _body(step).get("messages")
    if not isinstance(messages, list) and "systemPrompt" not in step.metadata and "tools" not in step.metadata:
        return None
    messages = messages if isinstance(messages, list) else []
    roles = "".join([(m.get("role") or "?")[:1] if isinstance(m, dict) and isinstance(m.get("role"), str) else "?"
                     for m in messages])
    system, tools = step.metadata.get("systemPrompt"), step.metadata.get("tools")
    return {"s": _short(system) if system else "", "t": _short(tools) if tools else "",
            "m": "".join([_short(m) for m in messages]), "r": roles}


# --- the detectors, one per kind ------------------------------------------------------------------


def _tool_loop(state: dict[str, Any], step: Step) -> None:
    body = _body(step)
    tool = step.metadata.get("tool") or ""
    calls = tool_calls_signature(body.get("toolCalls"))
    key = digest([tool, calls])
    seen = state.setdefault("tools", {})
    steps = seen.pop(key, [])  # re-inserted last: the dict's order is most recently used last
    seen[key] = steps
    if len(steps) < _STEPS_KEPT:
        steps.append(step.step_id)
    if len(seen) > TOOL_SIGNATURES:
        del seen[next(iter(seen))]
    if len(steps) >= REPEATS:
        arguments = jsontext.dumps(calls[0][1]) if calls else ""
        shown = f" ({arguments[:60]}{'…' if len(arguments) > 60 else ''})" if arguments else ""
        _put(state, f"loop:{key}", _flag("tool_loop", steps, f"{tool or 'A tool'} was called {len(steps)} times "
                                                            f"with the same arguments{shown}"))


def _repeated_answer(state: dict[str, Any], step: Step, text: str, has_calls: bool) -> None:
    if not text or has_calls:  # "Let me check" before a tool call is no answer
        state.pop("ans", None)
        return
    key = digest(text)
    run = state.get("ans")
    if run and run[0] == key:
        run[1] = [*run[1], step.step_id][-_STEPS_KEPT:]
        run[2] += 1
    else:
        run = state["ans"] = [key, [step.step_id], 1, step.step_id]
    if run[2] >= REPEATS:
        shown = text[:50] + ("…" if len(text) > 50 else "")
        # One flag per run, under its first step (runs stored before it was kept: the first step kept).
        first = run[3] if len(run) > 3 else run[1][0]
        _put(state, f"ans:{first}", _flag("repeated_answer", run[1],
                                              f"The same answer {len(run[1]) if run[2] <= _STEPS_KEPT else run[2]} "
                                              f"times in a row: “{shown}”"))


def _error_streak(state: dict[str, Any], step: Step) -> None:
    if step.kind == "tool_result" and "messages" in _body(step):
        return  # requests are neither success nor failure (a proxied tool_result is a request)
    if not _is_error(step):
        state.pop("err", None)
        return
    # [its first steps (at most _STEPS_KEPT), how long it is]; a plain list of every step id, as
    # streaks were stored before, grew with the streak.
    streak = state.setdefault("err", [[], 0])
    if not streak or isinstance(streak[0], int):
        streak = state["err"] = [streak[:_STEPS_KEPT], len(streak)]
    if len(streak[0]) < _STEPS_KEPT:
        streak[0].append(step.step_id)
    streak[1] += 1
    if streak[1] >= REPEATS:
        _put(state, f"err:{streak[0][0]}", _flag("error_streak", streak[0], f"{streak[1]} errors in a row"))


def _open_calls(state: dict[str, Any], step: Step, has_calls: bool) -> None:
    """Tool calls waiting for their answer: SDK spans by span id, an LLM's tool calls until anything follows."""
    open_calls = state.setdefault("open", {})
    if step.kind != "llm_thinking" and "ollm" in state:
        open_calls.pop(state.pop("ollm"), None)
    if step.kind == "tool_call_request":
        open_calls[step.span_id] = [step.step_id, step.at, step.metadata.get("tool") or "tool"]
    elif step.kind == "tool_call_response":
        if step.span_id in open_calls:
            del open_calls[step.span_id]
            _drop(state, f"dangle:{step.span_id}")
    elif step.kind == "llm_response" and has_calls:
        names = ", ".join(call_names(_body(step).get("toolCalls")))
        state["ollm"] = f"llm:{step.step_id}"
        open_calls[state["ollm"]] = [step.step_id, step.at, names or "tool"]
    elif step.kind == "llm_response":
        # A final answer ends the turn: a span still open now was never answered.
        for span, (step_id, _, tool) in open_calls.items():
            _put(state, f"dangle:{span}", dangling_flag(step_id, tool, "before the final answer"))
    if not open_calls:
        state.pop("open", None)


def dangling_flag(step_id: int, tool: str, when: str) -> dict[str, Any]:
    return _flag("dangling_tool", [step_id], f"The call to {tool} got no response or result {when}")


def _answer_flags(state: dict[str, Any], step: Step, text: str, has_calls: bool) -> None:
    reason = _body(step).get("finishReason")
    if reason in TRUNCATED_REASONS:
        _put(state, f"cut:{step.step_id}", _flag("truncated", [step.step_id],
                                                 f"The answer was cut at its token limit (finish reason “{reason}”)"))
    if not text and not has_calls:
        _put(state, f"empty:{step.step_id}", _flag("empty_answer", [step.step_id],
                                                   "The model answered with no text and no tool call"))


_ROLES = {"u": "user", "a": "assistant", "s": "system", "t": "tool", "d": "developer", "f": "function"}


def _what_changed(before: dict[str, Any] | None, now: dict[str, Any] | None) -> str:
    if not before or not now:
        return "the prompt before it is not known"
    changed = [part for part, key in (("the system prompt", "s"), ("the tools", "t")) if before[key] != now[key]]
    old, new = before["m"], now["m"]
    for index in range(min(len(old), len(new)) // 6):
        if old[index * 6:index * 6 + 6] != new[index * 6:index * 6 + 6]:
            role = _ROLES.get(now["r"][index:index + 1])
            changed.append(f"message {index + 1}{f' ({role})' if role else ''}")
            break
    else:
        if len(new) < len(old):
            changed.append(f"messages from {len(new) // 6 + 1} on (dropped)")
    return " and ".join(changed) + " changed" if changed else "no part of the prompt changed (the cache may have expired)"


def _request(state: dict[str, Any], digests: dict[str, Any]) -> None:
    """A new request: what changed since the previous one is decided now, so only one prompt is kept."""
    state["chg"] = _what_changed(state.get("req"), digests)
    state["req"] = digests


def _cache_break(state: dict[str, Any], step: Step) -> None:
    best = state.get("cmax", 0)
    previous_model = state.get("cmodel")
    if best >= CACHED_ENOUGH and step.cache_read < best * CACHE_DROP:
        if previous_model and step.model and step.model != previous_model:
            reason = f"the model changed from {previous_model} to {step.model}"
        else:
            reason = state.get("chg") or "the prompt before it is not known"
        _put(state, f"cache:{step.step_id}", _flag(
            "cache_break", [step.step_id],
            f"Cache reads fell from {best:,} to {step.cache_read:,} tokens: {reason}"))
        best = 0  # measured again from here: the next good read is the new level
    if step.cache_read > best:
        best = step.cache_read
    state["cmax"], state["cmodel"] = best, step.model or previous_model


def _duration(state: dict[str, Any], step: Step) -> tuple[str, int, int] | None:
    """(kind, step id it belongs to, milliseconds) of a step that ends here, if its duration is known."""
    kind = _DURATION_KINDS.get(step.kind)
    if kind is None:
        return None
    owner, ms = step.step_id, step.latency_ms
    if kind == "tool":
        opened = state.get("open", {}).get(step.span_id)
        if opened:
            owner = opened[0]
            if ms is None:
                ms = (step.at - opened[1]) * 1000
    return (kind, owner, int(ms)) if isinstance(ms, int | float) and ms >= 0 else None


def _slow_step(state: dict[str, Any], kind: str, owner: int, ms: int) -> None:
    durations = state.setdefault("dur", {}).setdefault(kind, {"n": 0, "x": [], "h": {}})
    durations["n"] += 1
    bucket = str(int(math.log(ms + 1) / _LOG_BUCKET))
    durations["h"][bucket] = durations["h"].get(bucket, 0) + 1
    if durations["x"] is not None:
        bisect.insort(durations["x"], ms)
        if len(durations["x"]) > EXACT_DURATIONS:
            durations["x"] = None  # the histogram alone from here on
    if ms > SLOW_MIN_MS:
        candidates = state.setdefault("slow", {}).setdefault(kind, [])
        candidates.append([owner, ms])
        del candidates[:-MAX_SLOW_CANDIDATES]
    elif not (candidates := state.get("slow", {}).get(kind)):
        return
    median = _median(durations)
    for step_id, took in candidates:
        key = f"slow:{step_id}"
        if durations["n"] >= REPEATS and took > SLOW_FACTOR * median:
            _put(state, key, _flag("slow_step", [step_id],
                                   f"This {_KIND_WORDS[kind]} took {took / 1000:.1f} s, {took / median:.0f}× the trace's "
                                   f"median {_KIND_WORDS[kind]} ({median / 1000:.1f} s)" if median else
                                   f"This {_KIND_WORDS[kind]} took {took / 1000:.1f} s"))
        else:
            _drop(state, key)


def _median(durations: dict[str, Any]) -> float:
    values = durations["x"]
    if values is not None:
        middle = len(values) // 2
        return float(values[middle]) if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    seen, half = 0, durations["n"] / 2
    for bucket in sorted(durations["h"], key=int):
        seen += durations["h"][bucket]
        if seen >= half:
            return _BUCKET ** (int(bucket) + 0.5) - 1  # the bucket's middle, within 12% of the true median
    return 0.0


def _double_count(state: dict[str, Any], step: Step, text: str) -> int | None:
    """Compare an LLM response with the one before it; the step id of a manual duplicate of a proxied one."""
    model = step.model.rsplit("/", 1)[-1]
    names = "\0".join(call_names(_body(step).get("toolCalls")))
    key = digest("\0".join((model, text, names)))
    last, state["last"] = state.get("last"), [step.source, step.step_id, key]
    if not last or last[0] == step.source or last[2] != key or "proxy" not in (last[0], step.source):
        return None
    manual = step.step_id if step.source != "proxy" else last[1]
    state["last"] = None  # paired: a third copy is a new turn
    _put(state, f"double:{manual}", _flag("double_count", [last[1], step.step_id],
                                          f"Step {manual} repeats the proxied LLM response by hand; counted once in "
                                          "the totals"))
    return manual


def observe(state: dict[str, Any], step: Step) -> int | None:
    """Fold ``step`` into ``state`` (in place). Returns the step id of an LLM response that must not be
    counted in the totals (a manual copy of a proxied one), if this step reveals one."""
    uncounted, kind, has_calls = None, step.kind, False
    outcome, timed, opening = _ROLES_OF_KIND.get(kind, _NO_ROLE)
    if kind == "llm_response":
        text, has_calls = answer_text(step.content), bool(_body(step).get("toolCalls"))
        _repeated_answer(state, step, text, has_calls)
        _answer_flags(state, step, text, has_calls)
        _cache_break(state, step)
        uncounted = _double_count(state, step, text)
    elif kind in _REQUESTS:
        if (digests := request_digests(step)) is not None:
            _request(state, digests)
    elif kind in _TOOL_STARTS:
        _tool_loop(state, step)
    if outcome:
        _error_streak(state, step)
    if timed and (ended := _duration(state, step)) is not None:
        _slow_step(state, *ended)
    if opening or (kind != "llm_thinking" and "ollm" in state):
        _open_calls(state, step, has_calls)
    return uncounted


# What each kind takes part in: (an outcome, a timed step, opens or closes calls); one lookup per event.
_ROLES_OF_KIND = {kind: (kind in _OUTCOMES, kind in _DURATION_KINDS, kind in _OPENING)
                  for kind in {*_OUTCOMES, *_DURATION_KINDS, *_OPENING}}
_NO_ROLE = (False, False, False)


def dangling(state: dict[str, Any] | None, now: float) -> list[dict[str, Any]]:
    """Read time: the open calls that have waited longer than DANGLING_AFTER_S, not flagged yet."""
    flagged = (state or {}).get("flags", {})
    return [dangling_flag(step_id, tool, f"after {DANGLING_AFTER_S // 60} minutes")
            for key, (step_id, at, tool) in (state or {}).get("open", {}).items()
            if now - at > DANGLING_AFTER_S and f"dangle:{key}" not in flagged]


def oldest_open(state: dict[str, Any] | None) -> float | None:
    """When the longest-waiting open call started (epoch seconds), for filtering without reading states."""
    times = [at for _, at, _ in (state or {}).get("open", {}).values()]
    return min(times) if times else None

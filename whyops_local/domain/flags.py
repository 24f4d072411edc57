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
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
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
_KIND_WORDS = {"llm": "LLM call", "tool": "tool call", "embedding": "embedding call"}


@dataclass(slots=True)
class Step:
    """What the flags read of one stored event. The names are ``models.Event``'s, so the writer hands
    its events over as they are: building a Step for each cost ~1 us an event (measured)."""

    event_type: str
    step_id: int
    timestamp: datetime
    source: str = "sdk"
    span_id: str = ""
    content: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    latency_ms: float | None = None
    cache_read_tokens: int = 0


def _json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # what orjson refuses (see jsontext)
        return json.dumps(value).encode("utf-8", "surrogatepass")


def digest(value: Any) -> str:
    """A short fingerprint of a JSON value (crc32: it runs for every message of every request)."""
    try:
        data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else orjson.dumps(value)
    except TypeError:
        data = _json_bytes(value)
    return "%08x" % zlib.crc32(data)  # noqa: UP031 (half the time of an f-string's format spec)


def _flag(kind: str, steps: Iterable[int], message: str) -> dict[str, Any]:
    return {"kind": kind, "stepIds": sorted(set(steps)), "message": message}


def _put(state: dict[str, Any], key: str, flag: dict[str, Any]) -> None:
    flags = state.setdefault("flags", {})
    if key in flags or len(flags) < MAX_FLAGS:
        flags[key] = flag


def _drop(state: dict[str, Any], key: str) -> None:
    if flags := state.get("flags"):
        flags.pop(key, None)


def flags_of(state: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The flags found so far, in step order."""
    return sorted((state or {}).get("flags", {}).values(), key=lambda f: (f["stepIds"][:1], f["kind"]))


def kinds_of(flags: Iterable[dict[str, Any]]) -> list[str]:
    found = {f["kind"] for f in flags}
    return [kind for kind in KINDS if kind in found]


# --- reading event content -------------------------------------------------------------------

_NOTHING: dict[str, Any] = {}  # read only: the body of an event whose content is no object


def _body(step: Step) -> dict[str, Any]:
    return step.content if isinstance(step.content, dict) else _NOTHING


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


def _short(value: Any) -> str:
    return digest(value)[:6]


def _message_digests(messages: list[Any]) -> str:
    """The first 6 hex digits of each message's crc32, one string (the loop inlined: it runs over a
    request's whole history)."""
    try:
        return "".join(["%06x" % (zlib.crc32(orjson.dumps(m)) >> 8) for m in messages])  # noqa: UP031 (as in digest)
    except TypeError:  # what orjson refuses, the slow way for all
        return "".join(["%06x" % (zlib.crc32(_json_bytes(m)) >> 8) for m in messages])  # noqa: UP031


def request_digests(step: Step) -> dict[str, Any] | None:
    """What a request event says of the prompt: short digests of system prompt, tools and each message
    (one string, 6 characters a message), and the role of each message (one letter each)."""
    messages, metadata = _body(step).get("messages"), step.metadata
    if not isinstance(messages, list):
        if "systemPrompt" not in metadata and "tools" not in metadata:
            return None
        messages = []
    roles = "".join([(m.get("role") or "?")[:1] if isinstance(m, dict) and isinstance(m.get("role"), str) else "?"
                     for m in messages])
    system, tools = metadata.get("systemPrompt"), metadata.get("tools")
    return {"s": _short(system) if system else "", "t": _short(tools) if tools else "",
            "m": _message_digests(messages), "r": roles}


# --- the detectors -------------------------------------------------------------------------------
# observe() sends each kind of event to the one function that does all its kind takes part in, and
# the detectors read the state with get() rather than setdefault(), which built a default every call:
# with a digest of an answer's text made once, 2.2 against 3.3 us an event of bench/ingest.py's agent
# runs replayed (the writer stores one in ~45 us; flags must cost < 10%).


def _tool_loop(state: dict[str, Any], step: Step) -> None:
    tool = step.metadata.get("tool") or ""
    calls = tool_calls_signature(_body(step).get("toolCalls"))
    key = digest([tool, calls])
    seen = state.get("tools")
    if seen is None:
        seen = state["tools"] = {}
    steps = seen.pop(key, None)  # re-inserted last: the dict's order is most recently used last
    if steps is None:
        seen[key] = [step.step_id]
        if len(seen) > TOOL_SIGNATURES:
            del seen[next(iter(seen))]
        return
    seen[key] = steps
    if len(steps) < _STEPS_KEPT:
        steps.append(step.step_id)
    if len(steps) >= REPEATS:
        arguments = jsontext.dumps(calls[0][1]) if calls else ""
        shown = f" ({arguments[:60]}{'…' if len(arguments) > 60 else ''})" if arguments else ""
        _put(state, f"loop:{key}", _flag("tool_loop", steps, f"{tool or 'A tool'} was called {len(steps)} times "
                                                            f"with the same arguments{shown}"))


def _repeated_answer(state: dict[str, Any], step: Step, text: str, key: str, has_calls: bool) -> None:
    if not text or has_calls:  # "Let me check" before a tool call is no answer
        state.pop("ans", None)
        return
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


def _outcome(state: dict[str, Any], step: Step, failed: bool) -> None:
    """A step that succeeded or failed: an error streak grows or ends."""
    if not failed:
        state.pop("err", None)
        return
    # [its first steps (at most _STEPS_KEPT), how long it is]; a plain list of every step id, as
    # streaks were stored before, grew with the streak.
    streak = state.get("err")
    if streak is None:
        streak = state["err"] = [[], 0]
    elif not streak or isinstance(streak[0], int):
        streak = state["err"] = [streak[:_STEPS_KEPT], len(streak)]
    if len(streak[0]) < _STEPS_KEPT:
        streak[0].append(step.step_id)
    streak[1] += 1
    if streak[1] >= REPEATS:
        _put(state, f"err:{streak[0][0]}", _flag("error_streak", streak[0], f"{streak[1]} errors in a row"))


def _close_llm_calls(state: dict[str, Any]) -> None:
    """An LLM's tool calls are answered by whatever follows them (but its thinking)."""
    open_calls = state.get("open") or {}
    open_calls.pop(state.pop("ollm"), None)
    if not open_calls:
        state.pop("open", None)


def dangling_flag(step_id: int, tool: str, when: str) -> dict[str, Any]:
    return _flag("dangling_tool", [step_id], f"The call to {tool} got no response or result {when}")


_ROLES = {"u": "user", "a": "assistant", "s": "system", "t": "tool", "d": "developer", "f": "function"}


def _what_changed(before: dict[str, Any] | None, now: dict[str, Any] | None) -> str:
    if not before or not now:
        return "the prompt before it is not known"
    changed = [part for part, key in (("the system prompt", "s"), ("the tools", "t")) if before[key] != now[key]]
    old, new = before["m"], now["m"]
    if new.startswith(old):  # messages appended, the usual next request
        pass
    elif old.startswith(new):
        changed.append(f"messages from {len(new) // 6 + 1} on (dropped)")
    else:
        for index in range(0, len(new), 6):
            if old[index:index + 6] != new[index:index + 6]:
                break
        role = _ROLES.get(now["r"][index // 6:index // 6 + 1])
        changed.append(f"message {index // 6 + 1}{f' ({role})' if role else ''}")
    return " and ".join(changed) + " changed" if changed else "no part of the prompt changed (the cache may have expired)"


def _request(state: dict[str, Any], step: Step) -> None:
    """A new request: what changed since the previous one is decided now, so only one prompt is kept,
    and only if the answer to it can break the cache (an earlier call read enough of it)."""
    if (digests := request_digests(step)) is not None:
        if state.get("cmax", 0) >= CACHED_ENOUGH:
            state["chg"] = _what_changed(state.get("req"), digests)
        else:
            state.pop("chg", None)
        state["req"] = digests


def _cache_break(state: dict[str, Any], step: Step) -> None:
    best, read = state.get("cmax", 0), step.cache_read_tokens
    previous_model = state.get("cmodel")
    if best >= CACHED_ENOUGH and read < best * CACHE_DROP:
        if previous_model and step.model and step.model != previous_model:
            reason = f"the model changed from {previous_model} to {step.model}"
        else:
            reason = state.get("chg") or "the prompt before it is not known"
        _put(state, f"cache:{step.step_id}", _flag(
            "cache_break", [step.step_id], f"Cache reads fell from {best:,} to {read:,} tokens: {reason}"))
        best = 0  # measured again from here: the next good read is the new level
    if read > best:
        best = read
    state["cmax"], state["cmodel"] = best, step.model or previous_model


def _bucket(ms: int) -> str:
    return str(int(math.log(ms + 1) / _LOG_BUCKET))


def _slow_step(state: dict[str, Any], kind: str, owner: int, ms: Any) -> None:
    """A step of ``kind`` that took ``ms`` ended (``owner``: the step it is shown as)."""
    if not isinstance(ms, (int, float)) or not ms >= 0:  # noqa: UP038 (a union is built on every call)
        return
    ms = int(ms)
    every_kind = state.get("dur")
    if every_kind is None:
        every_kind = state["dur"] = {}
    durations = every_kind.get(kind)
    if durations is None:
        durations = every_kind[kind] = {"n": 0, "x": [], "h": {}}
    durations["n"] += 1
    if (exact := durations["x"]) is None:
        bucket, histogram = _bucket(ms), durations["h"]
        histogram[bucket] = histogram.get(bucket, 0) + 1
    else:
        bisect.insort(exact, ms)
        if len(exact) > EXACT_DURATIONS:  # the histogram alone from here on, made of what was kept
            durations["h"], durations["x"] = dict(Counter(map(_bucket, exact))), None
    slow = state.get("slow")
    if ms > SLOW_MIN_MS:
        if slow is None:
            slow = state["slow"] = {}
        candidates = slow.setdefault(kind, [])
        candidates.append([owner, ms])
        del candidates[:-MAX_SLOW_CANDIDATES]
    elif not slow or not (candidates := slow.get(kind)):
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


def _double_count(state: dict[str, Any], step: Step, text_key: str, names: list[str]) -> int | None:
    """Compare an LLM response with the one before it; the step id of a manual duplicate of a proxied one."""
    key = "\0".join((step.model.rsplit("/", 1)[-1], text_key, *names))
    last, state["last"] = state.get("last"), [step.source, step.step_id, key]
    if not last or last[0] == step.source or last[2] != key or "proxy" not in (last[0], step.source):
        return None
    manual = step.step_id if step.source != "proxy" else last[1]
    state["last"] = None  # paired: a third copy is a new turn
    _put(state, f"double:{manual}", _flag("double_count", [last[1], step.step_id],
                                          f"Step {manual} repeats the proxied LLM response by hand; counted once in "
                                          "the totals"))
    return manual


# --- each kind of event, all it takes part in ------------------------------------------------------


def _on_answer(state: dict[str, Any], step: Step) -> int | None:
    body = _body(step)
    calls = body.get("toolCalls")
    names = call_names(calls) if calls else []
    text, has_calls = answer_text(step.content), bool(calls)
    text_key = digest(text) if text else ""
    _repeated_answer(state, step, text, text_key, has_calls)
    reason = body.get("finishReason")
    if isinstance(reason, str) and reason in TRUNCATED_REASONS:
        _put(state, f"cut:{step.step_id}", _flag("truncated", [step.step_id],
                                                 f"The answer was cut at its token limit (finish reason “{reason}”)"))
    if not text and not has_calls:
        _put(state, f"empty:{step.step_id}", _flag("empty_answer", [step.step_id],
                                                   "The model answered with no text and no tool call"))
    _cache_break(state, step)
    uncounted = _double_count(state, step, text_key, names)
    state.pop("err", None)  # a success ends an error streak
    _slow_step(state, "llm", step.step_id, step.latency_ms)
    if "ollm" in state:
        _close_llm_calls(state)
    open_calls = state.get("open")
    if has_calls:  # open until anything follows
        if open_calls is None:
            open_calls = state["open"] = {}
        key = state["ollm"] = f"llm:{step.step_id}"
        open_calls[key] = [step.step_id, step.timestamp.timestamp(), ", ".join(names) or "tool"]
    elif open_calls:  # a final answer ends the turn: a span still open was never answered
        for span, (step_id, _, tool) in open_calls.items():
            _put(state, f"dangle:{span}", dangling_flag(step_id, tool, "before the final answer"))
    return uncounted


def _on_tool_start(state: dict[str, Any], step: Step) -> None:
    _tool_loop(state, step)
    if step.event_type == "tool_call_request":  # an SDK span, open until its response (by span id)
        open_calls = state.get("open")
        if open_calls is None:
            open_calls = state["open"] = {}
        open_calls[step.span_id] = [step.step_id, step.timestamp.timestamp(), step.metadata.get("tool") or "tool"]


def _on_tool_response(state: dict[str, Any], step: Step) -> None:
    _outcome(state, step, _is_error_result(_body(step).get("toolResults")))
    owner, ms = step.step_id, step.latency_ms
    open_calls = state.get("open")
    if open_calls and (opened := open_calls.pop(step.span_id, None)):
        owner = opened[0]  # shown on its request, timed from it when no latency came
        if ms is None:
            ms = (step.timestamp.timestamp() - opened[1]) * 1000
        if not open_calls:
            del state["open"]
        _drop(state, f"dangle:{step.span_id}")
    _slow_step(state, "tool", owner, ms)


def _on_tool_result(state: dict[str, Any], step: Step) -> None:
    _request(state, step)
    body = _body(step)
    if "messages" not in body:  # a proxied tool_result is a request, neither success nor failure
        _outcome(state, step, _is_error_result(body.get("output")))


def _on_error(state: dict[str, Any], step: Step) -> None:
    _outcome(state, step, True)


def _on_embedding(state: dict[str, Any], step: Step) -> None:
    state.pop("err", None)
    _slow_step(state, "embedding", step.step_id, step.latency_ms)


_ON = {
    "user_message": _request,
    "tool_result": _on_tool_result,
    "tool_call_request": _on_tool_start,
    "tool_call": _on_tool_start,
    "tool_call_response": _on_tool_response,
    "error": _on_error,
    "embedding_response": _on_embedding,
}


def observe(state: dict[str, Any], step: Step) -> int | None:
    """Fold ``step`` (a Step or a stored Event) into ``state``, in place. Returns the step id of an LLM
    response that must not be counted in the totals (a manual copy of a proxied one), if this step
    reveals one."""
    kind = step.event_type
    if kind == "llm_response":
        return _on_answer(state, step)
    if kind == "llm_thinking":  # part of the call it comes with: it answers nothing
        return None
    if "ollm" in state:
        _close_llm_calls(state)
    if (on := _ON.get(kind)) is not None:
        on(state, step)
    return None


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

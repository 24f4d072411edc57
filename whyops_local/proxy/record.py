"""Storing a proxied call: its raw exchange and its WhyOps events, in one transaction.

Calls are written after the client has its answer, by the server's writer process: in the order
they finished, whatever happens to the request that made them (a client that hangs up must not lose
its call). The writer keeps the order it was given, so an SDK event sent after a proxied answer is
stored after it.
"""

import codecs
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..domain.schemas import EventIn, cut_to_depth
from ..live import messages as live
from ..models import Event, Exchange
from ..storage import content, writer
from ..storage.faults import fault_of
from ..storage.rows import EventsJob, RowCache, record_jobs
from ..storage.writer import Write
from .conversations import History
from .providers.base import Api, json_object
from .tool_spans import tool_spans

log = logging.getLogger(__name__)

@dataclass
class Call:
    api: Api
    method: str
    path: str
    trace_id: str
    agent: str
    user: str | None
    request_headers: dict[str, str]  # already redacted
    request_body: bytes
    body: dict[str, Any] | None
    started_at: datetime
    history: History | None = None  # None for routes not recorded
    started: float = field(default_factory=time.perf_counter)
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)  # already redacted
    response_body: bytes = b""
    chunks: list[list[Any]] | None = None
    ttfb_ms: float | None = None
    total_ms: float | None = None
    interrupted: bool = False
    error: str | None = None  # a failure of the proxy's own making (network, timeout)
    response: dict[str, Any] | None = None
    _decoder: Any = None
    _raw: list[bytes] | None = None

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)

    def add_chunk(self, chunk: bytes) -> None:
        if self.chunks is None:
            self.chunks, self._decoder, self._raw = [], codecs.getincrementaldecoder("utf-8")("replace"), []
        self.chunks.append([self.elapsed_ms(), self._decoder.decode(chunk)])
        self._raw.append(chunk)

    def finish(self) -> None:
        self.total_ms = self.elapsed_ms()
        if self.chunks is not None:
            self.chunks[-1][1] += self._decoder.decode(b"", final=True)  # a cut multi-byte character
            self.response_body = b"".join(self._raw)  # the bytes as relayed
        self._decoder = self._raw = None  # done with; the decoder cannot be pickled for the writer

    @property
    def ended_at(self) -> datetime:
        return self.started_at + timedelta(milliseconds=self.total_ms or 0)

    def __getstate__(self) -> dict[str, Any]:
        """What crosses to the writer process: the request's and a plain answer's bytes, not their parsed
        form, which the writer reads again. Pickling an agent's parsed history (a 33 KB one) cost the
        server's event loop more than orjson takes to parse it, and the history's digests stay here."""
        plain_answer = self.chunks is None and self.response is not None  # parsed from response_body
        return {**self.__dict__, "body": None, "history": None,
                "response": None if plain_answer else self.response, "_answer_in_body": plain_answer}

    def __setstate__(self, state: dict[str, Any]) -> None:
        answer_in_body = state.pop("_answer_in_body")
        self.__dict__.update(state)
        self.body = json_object(self.request_body) if self.method == "POST" else None
        if answer_in_body:
            self.response = json_object(self.response_body)


def _events(call: Call) -> list[dict[str, Any]]:
    api, body = call.api, call.body or {}
    events = [{**e, "timestamp": call.started_at.isoformat()} for e in api.request_events(body)]
    events = _tool_spans(call) + events
    succeeded = call.status is not None and 200 <= call.status < 300
    if succeeded and call.response is not None:
        answered = api.response_events(body, call.response, call.total_ms or 0)
        if call.interrupted:
            for item in answered:
                item["metadata"] = {**item["metadata"], "interrupted": True}
        events += [{**e, "timestamp": call.ended_at.isoformat()} for e in answered]
    if call.error or not succeeded:
        message = call.error or call.response_body.decode("utf-8", "replace")[:4000]
        model = body.get("model") if isinstance(body.get("model"), str) else None
        metadata = {"provider": api.provider, **({"model": model} if model else {})}
        events.append({"eventType": "error", "timestamp": call.ended_at.isoformat(), "metadata": metadata,
                       "content": {"message": message, **({"status": call.status} if call.status else {})}})
    return events


def _tool_spans(call: Call) -> list[dict[str, Any]]:
    results = call.api.tool_results(call.body or {})
    if not results:
        return []
    trace_events = Event.objects.filter(trace__trace_id=call.trace_id)
    previous = (trace_events.filter(event_type="llm_response", source=Event.SOURCE_PROXY)
                .order_by("-step_id", "-pk").first())
    if previous is None or not isinstance(previous.content, dict):
        return []
    # In the hybrid pattern the SDK records the tool spans itself; do not record them twice.
    by_sdk = {(e.metadata or {}).get("tool") for e in trace_events.filter(
        source=Event.SOURCE_SDK, event_type__in=("tool_call_request", "tool_call"), step_id__gt=previous.step_id)}
    return tool_spans(previous.content.get("toolCalls") or [], results, previous.timestamp,
                              call.started_at, skip_tools=by_sdk)


def record(call: Call, cache: RowCache | None = None, resent: bool = False) -> list[live.Message]:
    """Store the call with its raw exchange (in the writer, with its row cache) and return the live
    messages announcing it. Nobody waits for this: a failure is logged here, where the call is known,
    but for a fault of the database (full, read-only, gone), on which the writer keeps the call to try again.

    ``resent``: a writer died before saying it had stored the call; it may have. The exchange's start
    (to the microsecond) and path say whether it did (a scan, but only after a writer died)."""
    if resent and Exchange.objects.filter(started_at=call.started_at, path=call.path[:512]).exists():
        return []
    try:
        return _store(call, cache)
    except Exception as exc:
        if fault_of(exc) is not None:
            raise
        log.exception("could not record the proxied call %s %s (trace %s)", call.method, call.path, call.trace_id)
        return []


def _store(call: Call, cache: RowCache | None) -> list[live.Message]:
    items = [EventIn.model_validate({**cut_to_depth(e), "traceId": call.trace_id, "agentName": call.agent})
             for e in _events(call)]
    exchange = Exchange(
        provider=call.api.provider, method=call.method, path=call.path[:512], status=call.status,
        request_headers=call.request_headers, response_headers=call.response_headers, response_data=call.response_body,
        chunk_marks=content.chunk_marks(call.chunks, call.response_body.decode("utf-8", "replace")),
        started_at=call.started_at, ttfb_ms=call.ttfb_ms, total_ms=call.total_ms, interrupted=call.interrupted,
    )
    (outcome,) = record_jobs([EventsJob(items, Event.SOURCE_PROXY, call.user, exchange, call.request_body)], cache)
    if isinstance(outcome, Exception):
        raise outcome
    return live.announcements(outcome)


def record_soon(call: Call) -> None:
    """Queue the call for the writer, behind the response; once stored, it is announced from this event loop."""
    live.call_ended(call)
    writer.write_soon(Write(record, (call,), with_cache=True))

"""Storing a proxied call: its raw exchange and its WhyOps events, in one transaction.

Calls are written after the client has its answer, by one writer process: in the order they
finished, whatever happens to the request that made them (a client that hangs up must not lose its
call). A process rather than a thread because a write is milliseconds of ORM work that, in the
server's process, would hold the GIL while the next call waits to be relayed. SDK events for a
trace wait for that trace's queued calls (``calls_written``), so a tool span sent after a proxied
answer comes after it on the trace.
"""

import asyncio
import codecs
import logging
import multiprocessing
import threading
import time
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction

from .. import live
from ..models import Event, Exchange
from ..store import record_events
from ..validation import EventIn
from . import threads, writer
from .shapes import Api

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

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)

    def add_chunk(self, chunk: bytes) -> None:
        if self.chunks is None:
            self.chunks, self._decoder = [], codecs.getincrementaldecoder("utf-8")("replace")
        self.chunks.append([self.elapsed_ms(), self._decoder.decode(chunk)])

    def finish(self) -> None:
        self.total_ms = self.elapsed_ms()
        self._decoder = None  # done with, and it cannot be pickled for the writer
        if self.chunks is not None:
            self.response_body = "".join(text for _, text in self.chunks).encode()

    @property
    def ended_at(self) -> datetime:
        return self.started_at + timedelta(milliseconds=self.total_ms or 0)


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
    return threads.tool_spans(previous.content.get("toolCalls") or [], results, previous.timestamp,
                              call.started_at, skip_tools=by_sdk)


def record(call: Call) -> list[tuple[str, dict[str, Any]]]:
    """Store the call (in the writer process) and return the live messages announcing it."""
    if connection.vendor != "sqlite":
        # A long-lived process must not keep a server connection that went stale; SQLite's cannot,
        # and reopening it on every call would double the cost of a write.
        close_old_connections()
    items = [EventIn.model_validate({**e, "traceId": call.trace_id, "agentName": call.agent}) for e in _events(call)]
    with transaction.atomic():
        exchange = Exchange.objects.create(
            provider=call.api.provider, method=call.method, path=call.path[:512], status=call.status,
            request_headers=call.request_headers, request_body=call.request_body.decode("utf-8", "replace"),
            response_headers=call.response_headers, response_body=call.response_body.decode("utf-8", "replace"),
            chunks=call.chunks, started_at=call.started_at, ttfb_ms=call.ttfb_ms, total_ms=call.total_ms,
            interrupted=call.interrupted,
        )
        saved = record_events(items, source=Event.SOURCE_PROXY, user=call.user, exchange=exchange)
    return live.messages_for(saved)


_queued = Counter()  # trace id -> calls queued for the writer and not yet written
_written = threading.Condition()
_writer: ProcessPoolExecutor | None = None


def _start_writer() -> ProcessPoolExecutor:
    # Spawned, not forked: forking a server with running threads is unsafe.
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=writer.setup, initargs=(settings.DATABASES,))


def record_soon(call: Call) -> None:
    """Queue the call for the writer process; once stored, it is announced from this event loop."""
    global _writer
    loop = asyncio.get_running_loop()
    with _written:
        _queued[call.trace_id] += 1
    try:
        _writer = _writer or _start_writer()
        future = _writer.submit(record, call)
    except BrokenProcessPool:  # the writer died; the next one takes over
        log.error("the proxy's writer process died; starting another")
        _writer = _start_writer()
        future = _writer.submit(record, call)
    future.add_done_callback(lambda done: _written_one(call, done, loop))


def _written_one(call: Call, done: Future, loop: asyncio.AbstractEventLoop) -> None:
    if done.exception() is not None:
        log.error("could not record the proxied call %s %s (trace %s): %r",
                  call.method, call.path, call.trace_id, done.exception())
    else:
        loop.call_soon_threadsafe(live.publish_soon, done.result())
    with _written:
        _queued[call.trace_id] -= 1
        if not _queued[call.trace_id]:
            del _queued[call.trace_id]
        _written.notify_all()


async def calls_written(trace_ids: set[str], timeout: float = 10) -> None:
    """Wait until the proxied calls queued for these traces are stored (or ``timeout`` passes)."""
    def none_queued() -> bool:
        return not any(trace_id in _queued for trace_id in trace_ids)

    def wait() -> None:
        with _written:
            _written.wait_for(none_queued, timeout)

    with _written:
        if none_queued():  # the usual case: answered without a thread hop
            return
    await asyncio.to_thread(wait)

"""What the open pages hear about: one channel group for the trace list, one per trace.

Event messages carry ``seq``, the event's id (increasing with every stored event), so a page asks
the read API for what came after the last ``seq`` it saw and ignores repeats. Messages are built
right after commit, in the writer process, and sent from the server's event loop.

Nobody listening is the common case under load (an agent run with no page open), and building the
messages was a tenth of the cost of storing an event, so the writer skips them then. It reads how
many pages listen after its commit, and a consumer counts itself in before it reads the newest
``seq`` for its hello: either the writer sees the page, or the page's hello already covers the event.
"""

import asyncio
import hashlib
import itertools
import json
import logging
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

from ..background import in_background

if TYPE_CHECKING:  # not at import: the writer process imports this before Django is set up
    from ..storage.rows import Saved

log = logging.getLogger(__name__)
TRACE_LIST_GROUP = "traces"
Message = tuple[str, dict[str, Any]]

# Proxied streams running in this process, by trace id: the pages show them as "in progress".
streams_in_progress: Counter[str] = Counter()


# Pages listening to this server process, in memory shared with its writer process.
listening = multiprocessing.get_context("spawn").RawValue("i", 0)


def announce_needed() -> bool:
    """Whether newly stored events need messages: a page listens, or the channel layer is shared with
    other server processes (Redis), whose pages this process cannot count."""
    return listening.value > 0 or not isinstance(get_channel_layer(), InMemoryChannelLayer)


def trace_group(trace_id: str) -> str:
    # Group names must be short ASCII, and trace ids are any string; a page can join the group of a
    # trace before its first event is stored (a stream that is still running).
    return "trace." + hashlib.sha256(trace_id.encode()).hexdigest()[:40]


def messages_for(saved: "list[Saved]") -> list[Message]:
    """The (group, message) pairs announcing a request's newly stored events and their traces."""
    messages: list[Message] = []
    newest: dict[int, tuple[Any, int]] = {}
    for result in saved:
        if result.status != "saved":
            continue
        event = result.event
        trace = event.trace
        newest[trace.pk] = (trace, max(event.pk, newest.get(trace.pk, (None, 0))[1]))
        messages.append((trace_group(trace.trace_id), {"type": "event.new", "seq": event.pk, "event": event.to_dict()}))
    for trace, seq in newest.values():
        update = {"type": "trace.update", "seq": seq, "trace": trace.summary_dict()}
        messages.append((TRACE_LIST_GROUP, update))
        messages.append((trace_group(trace.trace_id), update))
    return messages


def announcements(saved: "list[Saved]") -> list[Message]:
    """``messages_for`` the events a writer just committed, if they need announcing (asked after the
    commit, see ``announce_needed``). A failure is logged, not raised: the events stay stored."""
    if not announce_needed():
        return []
    try:
        return messages_for(saved)
    except Exception:
        log.exception("could not build live messages")
        return []


def stream_messages(trace_id: str, running: bool) -> list[Message]:
    """A proxied stream on ``trace_id`` started (``running``) or ended."""
    message = {"type": "stream.state", "traceId": trace_id, "running": running}
    return [(TRACE_LIST_GROUP, message), (trace_group(trace_id), message)]


async def publish(messages: list[Message]) -> None:
    """Send each message to its group, as the JSON text the pages get: each server process's hub
    (consumers.py) hears it once and hands the same text to all its pages of that group."""
    layer = get_channel_layer()
    for group, message in messages:
        await layer.group_send(group, {"type": "live.relay", "group": group, "text": json.dumps(message)})


def publish_soon(messages: list[Message]) -> None:
    """Send from the running event loop without waiting; a failure is logged, never raised."""
    if not messages:
        return

    async def send() -> None:
        try:
            await publish(messages)
        except Exception:  # say, Redis went away: what is stored stays stored
            log.exception("could not publish live updates")

    in_background(send())


def stream_started(trace_id: str) -> None:
    streams_in_progress[trace_id] += 1
    if announce_needed():  # a page opened later reads streams_in_progress
        publish_soon(stream_messages(trace_id, running=True))


def stream_ended(trace_id: str) -> None:
    streams_in_progress[trace_id] -= 1
    if streams_in_progress[trace_id] <= 0:
        del streams_in_progress[trace_id]
    if announce_needed():
        publish_soon(stream_messages(trace_id, running=trace_id in streams_in_progress))


# A streamed answer's text goes to open pages at most this often (seconds): a growing answer, not a
# message per token.
TEXT_EVERY = 0.1


@dataclass
class _Running:
    """A proxied call between its request reaching the proxy and being queued for storing."""

    id: int
    trace_id: str
    model: str | None
    started_at: float  # epoch ms
    text: Callable[[], str] | None = None  # once it streams: its text so far
    sent_at: float = 0.0  # monotonic, of the last text sent
    timer: asyncio.TimerHandle | None = None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "startedAt": self.started_at, "streaming": self.text is not None,
                "text": self.text() if self.text else ""}


# By the proxy's own call object: calls of this process that pages show as pending, with what they streamed.
calls_in_progress: dict[int, _Running] = {}
_call_ids = itertools.count(1)


def running_calls(trace_id: str) -> list[dict[str, Any]]:
    """The trace's pending calls, for a page rendered while they run."""
    return [running.public() for running in calls_in_progress.values() if running.trace_id == trace_id]


def _to_trace(running: _Running, message: dict[str, Any]) -> None:
    publish_soon([(trace_group(running.trace_id), {**message, "traceId": running.trace_id})])


def call_started(call: object, trace_id: str, model: Any, started_at: datetime) -> None:
    """A proxied call reached the proxy and went upstream: a pending row on its trace's pages."""
    running = _Running(next(_call_ids), trace_id, model if isinstance(model, str) else None,
                       round(started_at.timestamp() * 1000, 3))
    calls_in_progress[id(call)] = running
    if announce_needed():
        _to_trace(running, {"type": "call.started", "call": running.public()})


def call_streamed(call: object, text: Callable[[], str]) -> None:
    """More of the call's stream arrived; ``text`` gives its text so far. Sent throttled, and only
    when someone may be watching: a stream nobody watches costs a lookup per chunk."""
    running = calls_in_progress.get(id(call))
    if running is None:
        return
    running.text = text
    if running.timer is not None or not announce_needed():
        return
    wait = running.sent_at + TEXT_EVERY - time.monotonic()
    if wait <= 0:
        _send_text(running)
    else:  # sent when due, with whatever has arrived by then
        running.timer = asyncio.get_running_loop().call_later(wait, _send_text, running)


def _send_text(running: _Running) -> None:
    running.timer = None
    running.sent_at = time.monotonic()
    _to_trace(running, {"type": "call.text", "id": running.id, "text": running.text() if running.text else ""})


def call_ended(call: object) -> None:
    """The call is done and queued for storing (or will not be stored): its page replaces the pending row
    with the stored step once that arrives."""
    running = calls_in_progress.pop(id(call), None)
    if running is None:
        return
    if running.timer is not None:
        running.timer.cancel()
    if announce_needed():
        _to_trace(running, {"type": "call.ended", "id": running.id})

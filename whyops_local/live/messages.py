"""What the open pages hear about: one channel group for the trace list, one per trace.

Event messages carry ``seq``, the event's id (increasing with every stored event), so a page asks
the read API for what came after the last ``seq`` it saw and ignores repeats. Messages are built
right after commit, in the writer process, and sent from the server's event loop.

Nobody listening is the common case under load (an agent run with no page open), and building the
messages was a tenth of the cost of storing an event, so the writer skips them then. It reads how
many pages listen after its commit, and a consumer counts itself in before it reads the newest
``seq`` for its hello: either the writer sees the page, or the page's hello already covers the event.
"""

import hashlib
import json
import logging
import multiprocessing
from collections import Counter
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

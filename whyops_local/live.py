"""What the open pages hear about: one channel group for the trace list, one per trace.

Messages carry ``seq``, the event's id (increasing with every stored event), so a page that
reconnects asks the read API for what came after the last ``seq`` it saw and ignores repeats.
Messages are built on the writer thread right after commit (building them may read the
database) and sent from the event loop.
"""

from typing import Any

from channels.layers import get_channel_layer

from .store import Saved

TRACE_LIST_GROUP = "traces"


def trace_group(trace_pk: int) -> str:
    # Group names must be short ASCII; trace ids are arbitrary strings, their row ids are not.
    return f"trace-{trace_pk}"


def messages_for(saved: list[Saved]) -> list[tuple[str, dict[str, Any]]]:
    """The (group, message) pairs announcing a request's newly stored events and their traces."""
    messages: list[tuple[str, dict[str, Any]]] = []
    traces = {}
    for result in saved:
        if result.status != "saved":
            continue
        event = result.event
        traces[event.trace_id] = (event.trace, max(event.pk, traces.get(event.trace_id, (None, 0))[1]))
        messages.append((trace_group(event.trace_id), {"type": "event.new", "seq": event.pk, "event": event.to_dict()}))
    for trace, seq in traces.values():
        update = {"type": "trace.update", "seq": seq, "trace": trace.summary_dict()}
        messages.append((TRACE_LIST_GROUP, update))
        messages.append((trace_group(trace.pk), update))
    return messages


async def publish(messages: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    for group, message in messages:
        await layer.group_send(group, message)

"""Websockets of the open pages: ``/ws/traces/`` for the list, ``/ws/traces/<traceId>`` for one trace.

A consumer relays its group's messages (see messages.py). Its hello carries the newest ``seq`` there
is, so a page that (re)connects catches up over the read API (``?after=<seq>``) on whatever was
stored since it was rendered or since it lost the connection.

The pages of a server process do not join channel-layer groups themselves: the process's ``Hub``
joins each group once, for all of them, and hands every message it hears to that group's pages,
already JSON. With one channel per page, 1,000 open pages made each event 1,000 deep copies, 1,000
JSON encodings and, in the in-memory layer, 1,000 scans of all 1,000 channels for expired messages,
all on the event loop that answers ingest requests (200 ingests took 16 s instead of 0.6 s).

The hub takes each message off its channel as soon as it arrives and fans out from a queue of its
own: the layer keeps at most ``capacity`` (100) messages a channel and drops the rest silently, and
with 1,000 pages one message's fan-out takes a few tenths of a second while events keep coming.
"""

import asyncio
import logging
import weakref
from collections import defaultdict

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.db import DatabaseError
from django.db.models import Max

from ..models import Event
from ..storage.faults import read_fault
from . import messages as live
from .messages import TRACE_LIST_GROUP, trace_group

log = logging.getLogger(__name__)
# Pages sent to before the fan-out lets the event loop answer whatever else waits (ingest requests),
# and for how long: a frame costs daphne and autobahn 0.1-0.3 ms, so with 1,000 pages an event's
# messages take most of a second, which must not be a second in front of every ingest answer. The
# pause leaves the fan-out about half the loop: busier, it took the CPU the writer (and PostgreSQL)
# needed on two cores, and with 1,000 pages ingest p99 went from 12 to 70 ms on PostgreSQL + Redis.
SENDS_PER_TURN = 10
PAUSE_BETWEEN_TURNS = 0.003


class Hub:
    """One channel-layer channel of this process, in each group a page of it listens to."""

    def __init__(self, layer) -> None:
        self.layer = layer
        self.members: dict[str, set[_RelayConsumer]] = defaultdict(set)
        self.channel: str | None = None
        # What was heard, with the pages listening when it was: a page that joins later rendered after
        # it, so it would get an update older than what it shows.
        self._received: asyncio.Queue[tuple[str, list]] = asyncio.Queue()
        # Held while a group is joined or left: a page counts as listening once its group is joined.
        self._lock = asyncio.Lock()

    async def join(self, group: str, page: "_RelayConsumer") -> None:
        async with self._lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
                loop = asyncio.get_running_loop()
                self._tasks = [loop.create_task(self._receive(self.channel)), loop.create_task(self._fan_out())]
            if not self.members[group]:
                await self.layer.group_add(group, self.channel)
            self.members[group].add(page)

    async def leave(self, group: str, page: "_RelayConsumer") -> None:
        async with self._lock:
            members = self.members.get(group, set())
            members.discard(page)
            if not members and group in self.members:
                del self.members[group]
                await self.layer.group_discard(group, self.channel)

    async def _receive(self, channel: str) -> None:
        while True:
            # On a task of its own, so that the hub's cancellation (the loop closing) reaches the hub
            # however the layer's receive takes it (see _stop).
            receiving = asyncio.ensure_future(self.layer.receive(channel))
            try:
                message = await asyncio.shield(receiving)
            except asyncio.CancelledError:
                await _stop(receiving)
                raise
            except Exception:  # say, Redis went away: retry, pages catch up when they reconnect
                log.exception("could not receive live messages")
                await asyncio.sleep(1)
                continue
            self._received.put_nowait((message["text"], list(self.members.get(message["group"], ()))))

    async def _fan_out(self) -> None:
        while True:
            text, pages = await self._received.get()
            for start in range(0, len(pages), SENDS_PER_TURN):
                if start:  # a timer, not sleep(0): the requests waiting get the loop, not just a turn of it
                    await asyncio.sleep(PAUSE_BETWEEN_TURNS)
                for page in pages[start:start + SENDS_PER_TURN]:
                    await page.deliver(text)


async def _stop(task: asyncio.Task) -> None:
    """Cancel ``task`` until it ends. Once may not do: redis-py (channels_redis's client) writes each
    command through Python 3.11's ``asyncio.wait_for``, which loses a cancellation that lands as the
    write completes, and the receive then waits on the next BZPOPMIN for ever (a closing loop hung in
    1 of 8 PostgreSQL-lane runs)."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
    if not task.cancelled():
        task.exception()  # the layer's answer to the cancel (its clean-up can fail), not worth a log line


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """This event loop's hub (a server has one loop; tests start one per test)."""
    loop, layer = asyncio.get_running_loop(), get_channel_layer()
    if loop not in _hubs or _hubs[loop].layer is not layer:
        _hubs[loop] = Hub(layer)
    return _hubs[loop]


class _RelayConsumer(AsyncJsonWebsocketConsumer):
    # No channel-layer channel of its own (an alias with no layer): the hub receives for every page.
    # With one, each page kept a receive waiting on the layer; on Redis, whichever page's receive held
    # the layer's BZPOPMIN was closed with 1011 when that read timed out.
    channel_layer_alias = None
    group: str | None = None
    # Messages heard before the hello went out, sent right after it.
    held: list[str] | None = None

    async def join(self, group: str, events) -> None:
        self.held = []
        await hub().join(group, self)
        live.listening.value += 1  # before reading the newest seq (see messages.py)
        self.group = group
        try:
            seq = await database_sync_to_async(lambda: events.aggregate(seq=Max("pk"))["seq"] or 0)()
        except DatabaseError as exc:
            await self.disconnect(1011)  # counted out now: a consumer that raises is never told to disconnect
            if (fault := read_fault(exc)) is None:
                raise
            # Refused before the handshake ends, as the page's reconnecting with backoff expects; a
            # traceback for each retry would bury what the log says about the database.
            log.warning("refused a live page: %s", fault)
            await self.close()
            return
        await self.accept()
        await self.send_json({"type": "hello", "seq": seq})
        held, self.held = self.held, None
        for text in held:
            await self.send(text_data=text)

    async def deliver(self, text: str) -> None:
        try:
            if self.group is None:  # it left after the message was heard
                return
            if self.held is not None:
                self.held.append(text)
            else:
                await self.send(text_data=text)
        except Exception:  # say, the page is gone: the others still get theirs
            log.exception("could not relay a live message")

    async def disconnect(self, code: int) -> None:
        if group := getattr(self, "group", None):
            self.group = None  # once: it is also called after a join that failed
            await hub().leave(group, self)
            live.listening.value -= 1


class TraceListConsumer(_RelayConsumer):
    async def connect(self) -> None:
        await self.join(TRACE_LIST_GROUP, Event.objects.all())


class TraceConsumer(_RelayConsumer):
    async def connect(self) -> None:
        trace_id = self.scope["url_route"]["kwargs"]["trace_id"]
        await self.join(trace_group(trace_id), Event.objects.filter(trace__trace_id=trace_id))

"""Websockets of the open pages: ``/ws/traces/`` for the list, ``/ws/traces/<traceId>`` for one trace.

A consumer relays its group's messages (see live.py). Its hello carries the newest ``seq`` there
is, so a page that (re)connects catches up over the read API (``?after=<seq>``) on whatever was
stored since it was rendered or since it lost the connection.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db.models import Max

from ..models import Event
from . import messages as live
from .messages import TRACE_LIST_GROUP, trace_group


class _RelayConsumer(AsyncJsonWebsocketConsumer):
    group: str

    async def join(self, group: str, events) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        live.listening.value += 1  # before reading the newest seq (see live.py)
        self.group = group
        seq = await database_sync_to_async(lambda: events.aggregate(seq=Max("pk"))["seq"] or 0)()
        await self.accept()
        await self.send_json({"type": "hello", "seq": seq})

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            live.listening.value -= 1

    async def relay(self, message: dict) -> None:
        await self.send_json(message)

    # Channels calls the handler named after the message type ("event.new" -> event_new).
    event_new = trace_update = stream_state = trace_deleted = call_started = call_text = call_ended = relay


class TraceListConsumer(_RelayConsumer):
    async def connect(self) -> None:
        await self.join(TRACE_LIST_GROUP, Event.objects.all())


class TraceConsumer(_RelayConsumer):
    async def connect(self) -> None:
        trace_id = self.scope["url_route"]["kwargs"]["trace_id"]
        await self.join(trace_group(trace_id), Event.objects.filter(trace__trace_id=trace_id))

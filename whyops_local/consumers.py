"""Websockets of the open pages: ``/ws/traces/`` for the list, ``/ws/traces/<traceId>`` for one trace.

A consumer only relays its group's messages (see live.py); a page that (re)connects catches up
over the read API (``?after=<seq>``), so nothing here keeps state.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .live import TRACE_LIST_GROUP, trace_group
from .models import Trace


class _RelayConsumer(AsyncJsonWebsocketConsumer):
    group: str

    async def join(self, group: str) -> None:
        self.group = group
        await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "group": group})

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def event_new(self, message: dict) -> None:
        await self.send_json(message)

    async def trace_update(self, message: dict) -> None:
        await self.send_json(message)


class TraceListConsumer(_RelayConsumer):
    async def connect(self) -> None:
        await self.join(TRACE_LIST_GROUP)


@database_sync_to_async
def _trace_pk(trace_id: str) -> int | None:
    return Trace.objects.filter(trace_id=trace_id).values_list("pk", flat=True).first()


class TraceConsumer(_RelayConsumer):
    async def connect(self) -> None:
        trace_id = self.scope["url_route"]["kwargs"]["trace_id"]
        pk = await _trace_pk(trace_id)
        if pk is None:
            await self.close(code=4404)
            return
        await self.join(trace_group(pk))

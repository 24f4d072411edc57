"""Websockets of the open pages: ``/ws/traces/`` for the list, ``/ws/traces/<traceId>`` for one trace.

A consumer only relays its group's messages (see live.py); a page that (re)connects catches up
over the read API (``?after=<seq>``), so nothing here keeps state.
"""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .live import TRACE_LIST_GROUP, trace_group


class _RelayConsumer(AsyncJsonWebsocketConsumer):
    group: str

    async def join(self, group: str) -> None:
        self.group = group
        await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello"})

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def relay(self, message: dict) -> None:
        await self.send_json(message)

    # Channels calls the handler named after the message type ("event.new" -> event_new).
    event_new = trace_update = stream_state = relay


class TraceListConsumer(_RelayConsumer):
    async def connect(self) -> None:
        await self.join(TRACE_LIST_GROUP)


class TraceConsumer(_RelayConsumer):
    async def connect(self) -> None:
        await self.join(trace_group(self.scope["url_route"]["kwargs"]["trace_id"]))

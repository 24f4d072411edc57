"""The websocket consumers: events announced after commit, to the right groups, to the app's own pages only."""

import asyncio
import json
import os

import pytest
from channels.testing import WebsocketCommunicator

from whyops_local.asgi import application
from whyops_local.http.ingest import ingest
from whyops_local.live import messages as live

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


def event(trace="t1", event_type="user_message", **fields):
    return {"eventType": event_type, "traceId": trace, "agentName": "live", **fields}


async def send(*events):
    status, answer = await ingest(json.dumps(list(events)).encode(), {})
    assert status == 201, answer
    return json.loads(answer)


async def connect(path, hello_seq=None):
    communicator = WebsocketCommunicator(application, path, headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    hello = await communicator.receive_json_from()
    assert hello["type"] == "hello" and (hello_seq is None or hello["seq"] == hello_seq)
    return communicator


async def test_the_list_hears_of_each_new_or_changed_trace():
    ws = await connect("/ws/traces/")
    try:
        (saved,) = await send(event(content={"messages": [{"role": "user", "content": "hi"}]}))
        update = await ws.receive_json_from(timeout=2)
        assert update["type"] == "trace.update" and update["seq"] == saved["id"]
        assert update["trace"]["traceId"] == "t1" and update["trace"]["eventCount"] == 1
    finally:
        await ws.disconnect()


async def test_a_trace_page_hears_its_own_events_only_with_increasing_seq():
    _, earlier = await send(event("a"), event("b"))
    ws = await connect("/ws/traces/a")
    try:
        first, second = await send(event("a", "llm_thinking", content={"type": "thinking", "thinking": "hm"}),
                                   event("a", "error", content={"message": "boom"}))
        await send(event("b", "error"))
        received = []
        while len(received) < 3:
            message = await ws.receive_json_from(timeout=2)
            if message["seq"] > earlier["id"]:  # not the earlier events' announcement, late through Redis
                received.append(message)
        assert [(m["type"], m["seq"]) for m in received] == [
            ("event.new", first["id"]), ("event.new", second["id"]), ("trace.update", second["id"])]
        assert received[1]["event"]["content"] == {"message": "boom"}
        assert received[2]["trace"]["errorCount"] == 1
        assert await ws.receive_nothing(timeout=0.3)  # trace b's event went elsewhere
    finally:
        await ws.disconnect()


async def test_a_refused_request_announces_nothing():
    ws = await connect("/ws/traces/")
    try:
        status, _ = await ingest(json.dumps([event(), event("t1", "tool_call_request")]).encode(), {})
        assert status == 400
        assert await ws.receive_nothing(timeout=0.3)
    finally:
        await ws.disconnect()


async def test_nothing_is_announced_when_the_commit_fails(monkeypatch):
    def failing_commit(jobs, cache=None):
        raise RuntimeError("disk full")

    monkeypatch.setattr("whyops_local.storage.rows.record_jobs", failing_commit)
    ws = await connect("/ws/traces/")
    try:
        with pytest.raises(RuntimeError):
            await send(event())
        assert await ws.receive_nothing(timeout=0.3)
    finally:
        await ws.disconnect()


# Another port of this machine is another site: a page there must not hear this server's events.
@pytest.mark.parametrize("origin", [b"http://evil.example", b"null", None, b"http://127.0.0.1:9999",
                                    b"https://127.0.0.1:8000"])
async def test_other_origins_may_not_listen(origin):
    headers = [(b"host", b"127.0.0.1:8000")] + ([(b"origin", origin)] if origin else [])
    communicator = WebsocketCommunicator(application, "/ws/traces/", headers=headers)
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_a_page_may_listen_to_a_trace_before_its_first_event():
    ws = await connect("/ws/traces/not yet/there")
    try:
        (saved,) = await send(event("not yet/there"))
        assert (await ws.receive_json_from(timeout=2))["seq"] == saved["id"]
    finally:
        await ws.disconnect()


async def test_catching_up_after_a_missed_stretch(client):
    """What a reconnecting page does: ask for what came after the last seq it saw."""
    (seen,) = await send(event("t"))
    missed = await send(event("t"), event("t"))
    detail = await asyncio.to_thread(lambda: client.get("/api/traces/t", {"after": seen["id"]}).json())
    assert [e["id"] for e in detail["events"]] == [m["id"] for m in missed]
    listed = await asyncio.to_thread(lambda: client.get("/api/traces", {"changed_after": seen["id"]}).json())
    assert [(t["traceId"], t["lastSeq"]) for t in listed["traces"]] == [("t", missed[-1]["id"])]
    assert (await asyncio.to_thread(lambda: client.get("/api/traces", {"changed_after": missed[-1]["id"]}).json()))[
        "traces"] == []


async def test_the_hello_carries_the_newest_seq_of_what_the_page_shows():
    """A page rendered before an event that was stored before it subscribed sees it is behind."""
    (a,) = await send(event("a"))
    (b,) = await send(event("b"))
    for path, seq in (("/ws/traces/", b["id"]), ("/ws/traces/a", a["id"]), ("/ws/traces/none yet", 0)):
        ws = await connect(path, hello_seq=seq)
        await ws.disconnect()


@pytest.mark.skipif(bool(os.environ.get("REDIS_URL")),
                    reason="with Redis, messages are always built: pages of other server processes may listen")
async def test_messages_are_built_only_while_a_page_listens(monkeypatch):
    built = []
    real = live.messages_for
    monkeypatch.setattr(live, "messages_for", lambda saved: built.append(saved) or real(saved))
    await send(event("quiet"))
    assert built == []
    ws = await connect("/ws/traces/elsewhere")  # any page of this server counts
    try:
        await send(event("heard"))
        assert len(built) == 1
    finally:
        await ws.disconnect()
    await send(event("quiet again"))
    assert len(built) == 1 and live.listening.value == 0


async def test_a_running_proxied_call_is_announced_and_its_text_throttled_to_its_trace_page():
    from datetime import UTC, datetime

    ws = await connect("/ws/traces/running")
    call, text = object(), []
    try:
        live.call_started(call, "running", "gpt-4o-mini", datetime(2026, 1, 1, tzinfo=UTC))
        started = await ws.receive_json_from(timeout=2)
        assert started["type"] == "call.started" and started["call"]["model"] == "gpt-4o-mini"
        assert live.running_calls("running") == [started["call"]] and started["call"]["startedAt"] == 1767225600000.0
        for word in ("Hel", "lo", " wor", "ld"):  # four chunks within the throttle window
            text.append(word)
            live.call_streamed(call, lambda: "".join(text))
        first = await ws.receive_json_from(timeout=2)
        assert (first["type"], first["id"], first["text"]) == ("call.text", started["call"]["id"], "Hel")
        # The rest come as one message, once the window has passed, with all that arrived meanwhile.
        rest = await ws.receive_json_from(timeout=2)
        assert rest["text"] == "Hello world" and await ws.receive_nothing(timeout=live.TEXT_EVERY * 2)
        live.call_ended(call)
        ended = await ws.receive_json_from(timeout=2)
        assert ended == {"type": "call.ended", "id": started["call"]["id"], "traceId": "running"}
        assert live.running_calls("running") == []
    finally:
        await ws.disconnect()


@pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="with Redis, pages of other processes may always listen")
async def test_a_running_call_nobody_watches_sends_nothing(monkeypatch):
    from datetime import UTC, datetime

    call, sent = object(), []
    monkeypatch.setattr(live, "publish_soon", sent.append)
    live.call_started(call, "unwatched", None, datetime.now(UTC))
    live.call_streamed(call, lambda: "text")
    live.call_ended(call)
    assert sent == [] and live.running_calls("unwatched") == []


@pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="reads the in-memory channel layer's groups")
async def test_a_server_process_joins_a_group_once_for_all_its_pages_and_each_page_hears_every_event():
    from channels.layers import get_channel_layer

    from whyops_local.live.consumers import hub

    before = set(get_channel_layer().channels)
    pages = [await connect("/ws/traces/fan-out") for _ in range(3)]
    try:
        assert len(get_channel_layer().groups[live.trace_group("fan-out")]) == 1
        # Only the hub receives from the layer, no page on a channel of its own.
        assert set(get_channel_layer().channels) - before == {hub().channel}
        (saved,) = await send(event("fan-out"))
        for ws in pages:
            heard = await ws.receive_json_from(timeout=2)
            assert (heard["type"], heard["seq"]) == ("event.new", saved["id"])
    finally:
        for ws in pages:
            await ws.disconnect()
    assert live.trace_group("fan-out") not in get_channel_layer().groups  # left once the last page went


@pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="times its sends against the in-memory layer")
async def test_pages_hear_every_message_of_a_burst_bigger_than_the_layer_holds_while_they_are_sent_to():
    from channels.layers import get_channel_layer

    pages = [await connect("/ws/traces/burst") for _ in range(100)]  # a fan-out of several turns a message
    burst = get_channel_layer().capacity + 50
    try:
        for i in range(burst):  # one by one, as ingest requests would
            await live.publish([(live.trace_group("burst"), {"type": "test", "i": i})])
            await asyncio.sleep(0.001)
        for ws in pages:
            assert [(await ws.receive_json_from(timeout=10))["i"] for _ in range(burst)] == list(range(burst))
    finally:
        for ws in pages:
            await ws.disconnect()


class _ErrorOnCancel:  # channels_redis's clean-up after a cancel can fail
    async def receive(self, channel):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise AssertionError("clean-up after a cancel failed") from None


class _LosesTheFirstCancel:  # as Python 3.11's wait_for, through which redis-py sends each command, can
    async def receive(self, channel):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass
        await asyncio.sleep(3600)


@pytest.mark.parametrize("layer", [_ErrorOnCancel, _LosesTheFirstCancel])
async def test_a_hub_stops_when_cancelled_however_its_layer_takes_the_cancel(layer):
    """A loop closing cancels the hub once; a hub still receiving would keep the loop from closing."""
    from whyops_local.live.consumers import Hub

    receiving = asyncio.create_task(Hub(layer())._receive("channel"))
    await asyncio.sleep(0.01)
    receiving.cancel()
    done, _ = await asyncio.wait([receiving], timeout=3)
    assert done and receiving.cancelled()
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    assert not others  # nor is the layer's receive left running

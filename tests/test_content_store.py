"""Each distinct message stored once: a growing-history run stays small, and reads back exactly."""

import json
import os
import sqlite3
import uuid

import httpx
import pytest

from whyops_local.domain import delta

from . import growing_history
from .proxy_fixtures import read_trace


def test_a_request_is_the_bytes_it_shares_with_the_previous_one_and_the_rest():
    base = b'{"messages": [1, 2, 3], "tools": [9]}'
    body = b'{"messages": [1, 2, 3, 4], "tools": [9]}'
    prefix, suffix, middle = delta.split(base, body)
    assert middle == b", 4" and delta.join(base, prefix, suffix, middle) == body
    assert delta.join(b"abc", *delta.split(b"abc", b"")) == b""
    assert delta.join(b"aaaa", *delta.split(b"aaaa", b"aaaaaa")) == b"aaaaaa"  # overlap never counted twice


def test_squeezed_bytes_come_back_whatever_they_look_like():
    for data in (b"", b"x", b"\x28\xb5\x2f\xfd raw bytes that look like zstd", b"{}" * 500):
        assert delta.unsqueeze(delta.squeeze(data)) == data


def test_a_body_squeezed_against_a_like_one_is_small_and_comes_back_with_it():
    like = b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"message": {"content": "Hello"}}]}'
    data = like.replace(b"chatcmpl-1", b"chatcmpl-2")
    packed = delta.squeeze(data, like)
    assert len(packed) < len(delta.squeeze(data)) / 2 and delta.unsqueeze(packed, like) == data
    for data in (b"", b"x", b"\x28\xb5\x2f\xfd raw bytes that look like zstd", like):
        assert delta.unsqueeze(delta.squeeze(data, like), like) == data


HEADERS = {"host": "127.0.0.1", "user-agent": "python-httpx", "content-type": "application/json",
           "content-length": "2277"}


@pytest.mark.parametrize("headers", [
    HEADERS,
    {**HEADERS, "content-length": "3526"},  # a value changes
    {k: v for k, v in HEADERS.items() if k != "user-agent"},  # one vanishes
    {"host": "127.0.0.1", "user-agent": "python-httpx", "cookie": "c", "content-type": "application/json",
     "content-length": "3526"},  # one appears, in the middle
    dict(reversed(HEADERS.items())),  # the same, in another order
    {"x-count": 1, "host": True},  # not text: 1 and True are equal in Python, not in JSON
    {},
])
def test_headers_are_kept_as_what_changed_and_come_back_whole_in_their_order(headers):
    found = delta.changes(HEADERS, headers)
    back = delta.changed(HEADERS, json.loads(json.dumps(found)))
    assert list(back.items()) == list(headers.items()) and [type(v) for v in back.values()] == [type(v) for v in headers.values()]


def test_headers_that_change_in_one_value_are_kept_as_that_value_whatever_order_the_base_comes_back_in():
    changed = {**HEADERS, "content-length": "3526"}
    found = delta.changes(HEADERS, changed)
    assert found == [2, 3, 1, ["content-length", "3526"]]  # the others by their place among the keys sorted
    assert list(delta.changed(dict(sorted(HEADERS.items())), found).items()) == list(changed.items())


def test_message_ids_are_kept_as_runs():
    assert delta.runs([1, 2, 3, 7, 3, 4]) == [[1, 3], [7, 1], [3, 2]]
    assert delta.ids_of(delta.runs([5, 6, 2, 2])) == [5, 6, 2, 2]


USAGE = {"model": "gpt-4o-mini", "provider": "openai", "systemPrompt": None,
         "usage": {"promptTokens": 120, "completionTokens": 12, "cacheReadTokens": 100}, "latencyMs": 8.7}


@pytest.mark.parametrize("value", [
    USAGE,
    {**USAGE, "usage": {**USAGE["usage"], "promptTokens": 2400}, "latencyMs": 9.1},  # a count and the time
    {k: v for k, v in USAGE.items() if k != "provider"},  # one vanishes
    {**USAGE, "usage": {"promptTokens": 120}},  # an inner one vanishes
    {**USAGE, "params": {"temperature": 0.2, "stop": None}},  # one appears, holding a null
    {**USAGE, "usage": 7},  # a dict becomes a number
    {**USAGE, "model": {"name": "m", "gone": None}},  # a text becomes a dict holding a null
    {**USAGE, "latencyMs": 8.7, "n": 1},
    {**USAGE, "latencyMs": -0.0},
    {}, {"x": [1, {"a": None}]},
])
def test_metadata_patched_against_another_comes_back_exactly(value):
    found = delta.patch(USAGE, value)
    assert found is not None
    back = delta.patched(USAGE, json.loads(json.dumps(found)))
    assert json.dumps(back) == json.dumps(value)  # in its order, 1 not 1.0 nor true


def test_a_patch_holds_only_what_changed_and_none_is_made_when_it_could_not_give_the_value_back():
    assert delta.patch(USAGE, USAGE) == {}
    assert delta.patch(USAGE, {**USAGE, "usage": {**USAGE["usage"], "promptTokens": 2400}, "latencyMs": 9.1}) == {
        "usage": {"promptTokens": 2400}, "latencyMs": 9.1}
    assert delta.patch({"n": 1, "on": True}, {"n": 1.0, "on": 1}) == {"n": 1.0, "on": 1}
    assert delta.patch(USAGE, {**USAGE, "model": None}) is None  # a null that base does not hold would remove it
    assert delta.patch(USAGE, dict(reversed(USAGE.items()))) is None  # an order a patch would not keep
    assert delta.patch({"a": {"x": 1, "y": 2}}, {"a": {"y": 2, "x": 1}}) is None
    assert delta.patch({"a": {"x": 1, "y": 2}}, {"a": {"y": 3, "x": 1}}, ordered=False) == {"a": {"y": 3}}
    assert delta.patch({"big": [2**70]}, {"big": [2**70]}) == {"big": [2**70]}  # orjson cannot compare it: kept


def test_a_growing_history_run_is_stored_small_and_reads_back_byte_for_byte(proxied, fake):
    fake.gate.set()
    trace_id = f"grow-{uuid.uuid4()}"
    calls = 40
    sent, distinct = growing_history.run(proxied.proxy, trace_id, calls)
    trace = read_trace(proxied, trace_id, events=2 * calls)
    exchanges = [e["exchangeId"] for e in trace["events"] if e["eventType"] == "user_message"]
    assert len(exchanges) == calls
    for exchange, body in zip(exchanges, sent, strict=True):
        assert httpx.get(f"{proxied.api}/exchanges/{exchange}/request").content == body
        assert httpx.get(f"{proxied.api}/exchanges/{exchange}").json()["requestBody"] == body.decode()
    # The conversation reads as it did when each call's history was stored whole: the proxy's mapping of it.
    from whyops_local.proxy.providers import openai

    for event, body in zip([e for e in trace["events"] if e["eventType"] == "user_message"], sent, strict=True):
        (mapped,) = openai.CHAT.request_events(json.loads(body))
        assert event["content"] == mapped["content"] and event["metadata"] == mapped["metadata"]
    # What the run's exchanges and messages take in the database, against what it sent.
    if os.environ.get("DATABASE_URL"):
        return  # measured on SQLite's file
    db = sqlite3.connect(proxied.sqlite_path)
    stored = db.execute(
        "SELECT SUM(LENGTH(request_data) + LENGTH(response_data)) FROM whyops_local_exchange WHERE id IN "
        f"({', '.join(map(str, exchanges))})").fetchone()[0]
    stored += db.execute("SELECT SUM(LENGTH(m.data)) FROM whyops_local_message m JOIN whyops_local_messageblob b"
                         " ON b.message_id = m.id JOIN whyops_local_trace t ON b.trace_id = t.id WHERE t.trace_id = ?",
                         (trace_id,)).fetchone()[0]
    assert stored <= 2 * distinct < sum(map(len, sent)) / 5
    # Each event's metadata but its kind's first is stored as what differs from that one's: here, its time.
    patched = db.execute("SELECT COUNT(*), MAX(LENGTH(e.metadata)) FROM whyops_local_event e JOIN whyops_local_trace t"
                         " ON e.trace_id = t.id WHERE t.trace_id = ? AND json_type(e.packing, '$.like') IS NOT NULL",
                         (trace_id,)).fetchone()
    assert patched[0] == 2 * calls - 2 and patched[1] < 40, patched


@pytest.mark.django_db
def test_a_request_stored_as_a_delta_of_another_reads_back_whole():
    from whyops_local.models import Exchange
    from whyops_local.storage import content

    first = Exchange.objects.create(provider="openai", method="POST", path="/", started_at="2026-01-01T00:00:00Z",
                                    request_data=delta.squeeze(b'{"messages": [1]}'))
    second = Exchange(provider="openai", method="POST", path="/", started_at="2026-01-01T00:00:01Z")
    depth = content.store_request(second, b'{"messages": [1, 2]}', content.Known(first.pk, b'{"messages": [1]}', 0))
    second.save()
    assert depth == 1 and second.request_base == first.pk
    assert Exchange.objects.get(pk=second.pk).request_bytes() == b'{"messages": [1, 2]}'


@pytest.mark.django_db
def test_an_exchange_packed_against_its_traces_first_reads_back_whole():
    from whyops_local.models import Exchange
    from whyops_local.storage import content

    def stored(request: dict, response: dict, answer: bytes, base):
        exchange = Exchange(provider="openai", method="POST", path="/", started_at="2026-01-01T00:00:00Z",
                            request_headers=request, response_headers=response, response_data=answer)
        known = content.store_exchange(exchange, b'{"messages": [1]}', base)
        exchange.save()
        return exchange.pk, known.stored_as(exchange.pk)

    answer = b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"message": {"content": "Hello"}}]}'
    response = {"date": "Wed, 02 Dec 2026 05:31:11 GMT", "content-type": "application/json", "x-request-id": "req_1"}
    first, known = stored(HEADERS, response, answer, None)
    later = [({**HEADERS, "content-length": "3526"}, {**response, "x-request-id": "req_2"}, answer.replace(b"-1", b"-2")),
             ({k: v for k, v in HEADERS.items() if k != "host"}, {"date": "Wed", "set-cookie": "[redacted]"}, b""),
             ({"cookie": "c", **HEADERS}, {}, b"\x28\xb5\x2f\xfd not zstd")]
    pks = []
    for request, response_headers, body in later:
        pk, known = stored(request, response_headers, body, known)
        pks.append(pk)
    assert known.anchor.exchange_id == first
    for pk, (request, response_headers, body) in zip(pks, later, strict=True):
        exchange = Exchange.objects.get(pk=pk)
        assert exchange.pack_base == first and exchange.request_bytes() == b'{"messages": [1]}'
        assert list(exchange.request_headers.items()) == list(request.items())
        assert list(exchange.response_headers.items()) == list(response_headers.items())
        assert exchange.response_bytes() == body
    assert isinstance(Exchange.objects.get(pk=pks[0]).request_head, list)  # what changed, not the whole headers
    assert Exchange.objects.get(pk=first).response_bytes() == answer


@pytest.mark.django_db
def test_what_a_request_adds_is_squeezed_with_its_new_messages_and_reads_back_exactly():
    from whyops_local.domain.schemas import EventIn
    from whyops_local.models import Exchange
    from whyops_local.storage import content
    from whyops_local.storage.rows import RowCache

    from .storing import record_events

    system = {"role": "system", "content": "Be brief. " + " ".join(f"rule{n}" for n in range(400))}
    trace_id, history, cache, pks = f"said-{uuid.uuid4()}", [system], RowCache(), []
    for turn in range(4):
        history.append({"role": "user", "content": f"turn {turn}: " + " ".join(f"word{turn * n}" for n in range(150))})
        body = json.dumps({"model": "m", "messages": history, "temperature": 0.2}).encode()
        exchange = Exchange(provider="openai", method="POST", path="/v1/chat/completions", started_at="2026-01-01T00:00:00Z")
        item = EventIn.model_validate({"eventType": "user_message", "traceId": trace_id, "agentName": "said",
                                       "content": {"messages": list(history)}})
        record_events([item], exchange=exchange, request=body, cache=cache)
        pks.append((exchange.pk, body))
        history.append({"role": "assistant", "content": f"answer {turn}"})
    for n, (pk, body) in enumerate(pks):
        stored = Exchange.objects.get(pk=pk)
        assert stored.request_dictionary and stored.request_bytes() == body
        # The new ~1 KB turn said again by its messages' ids (and the first body, whole, by its two)
        assert len(stored.request_data) < (len(body) / 5 if n == 0 else 80), n
    assert content.last_request(trace_id).body == pks[-1][1]  # as a restarted writer reads it


@pytest.mark.django_db
def test_two_traces_sharing_a_system_prompt_and_a_history_prefix_store_them_once():
    from whyops_local.domain.schemas import EventIn
    from whyops_local.models import Event, Message, Trace
    from whyops_local.storage import search
    from whyops_local.storage.retention import delete_trace_named

    from .storing import record_events

    mark = uuid.uuid4().hex
    prefix = [{"role": "system", "content": f"{mark} You are a support agent."},
              {"role": "user", "content": f"{mark} Where is order 7?"},
              {"role": "assistant", "content": f"{mark} It left the warehouse."}]
    histories = {name: [*prefix, {"role": "user", "content": f"{mark} and {name}?"}] for name in ("first", "second")}
    for name, history in histories.items():
        record_events([EventIn.model_validate({"eventType": "user_message", "traceId": f"{mark}-{name}", "agentName": "shared",
                                               "content": {"messages": history}})])
    ids = set(Message.objects.filter(uses__trace__trace_id__startswith=mark).values_list("pk", flat=True))
    stored = Message.objects.filter(pk__in=ids)
    assert len(ids) == len(prefix) + 2  # the prefix once, each trace's last question once

    def messages(name: str) -> list:
        return Event.objects.get(trace__trace_id=f"{mark}-{name}").content["messages"]

    def found(text: str) -> list[str]:
        return sorted(t.trace_id for t in Trace.objects.filtered(q=text))

    assert messages("first") == histories["first"] and messages("second") == histories["second"]
    assert found(f"{mark} It left") == [f"{mark}-first", f"{mark}-second"]  # the shared message's search row
    delete_trace_named(f"{mark}-first")
    assert messages("second") == histories["second"] and stored.count() == len(prefix) + 1
    assert found(f"{mark} It left") == [f"{mark}-second"] and found(f"{mark} and first") == []
    delete_trace_named(f"{mark}-second")
    assert stored.count() == 0
    from django.db import connection

    with connection.cursor() as cursor:  # and no search row is left of them
        for table in (search.TABLE, search.MESSAGES):
            cursor.execute(f"SELECT count(*) FROM {table} WHERE body LIKE %s", [f"%{mark}%"])
            assert cursor.fetchone()[0] == 0
            if connection.vendor == "sqlite":  # each index checked against the rows it reads its text from
                cursor.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")


def test_proxied_calls_whose_headers_change_read_back_exactly_as_sent_and_answered(proxied, fake):
    fake.gate.set()
    trace_id = f"heads-{uuid.uuid4()}"
    extra = [{}, {"X-Extra": "appears"}, {}, {"X-Extra": "again", "X-Other": "1"}]  # headers appear and vanish
    answers = []
    with httpx.Client(base_url=proxied.proxy, headers={"X-Trace-ID": trace_id}, timeout=30) as client:
        for n, headers in enumerate(extra):
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"call {n} " + "x" * 200}]}
            if n == 2:  # a stream, asking for usage (else the proxy asks for it, and relays the stream without it)
                body.update(stream=True, stream_options={"include_usage": True})
            answers.append(client.post("/v1/chat/completions", json=body, headers=headers).content)
    trace = read_trace(proxied, trace_id, events=2 * len(extra))
    exchanges = list(dict.fromkeys(e["exchangeId"] for e in trace["events"]))
    assert len(exchanges) == len(extra)
    for exchange, headers, answer in zip(exchanges, extra, answers, strict=True):
        assert httpx.get(f"{proxied.api}/exchanges/{exchange}/response").content == answer
        stored = httpx.get(f"{proxied.api}/exchanges/{exchange}").json()
        assert {k: v for k, v in stored["requestHeaders"].items() if k.startswith("x-extra") or k == "x-other"} == {
            k.lower(): v for k, v in headers.items()}
        assert stored["requestHeaders"]["x-trace-id"] == trace_id and "date" in stored["responseHeaders"]

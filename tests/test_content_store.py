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


def test_message_ids_are_kept_as_runs():
    assert delta.runs([1, 2, 3, 7, 3, 4]) == [[1, 3], [7, 1], [3, 2]]
    assert delta.ids_of(delta.runs([5, 6, 2, 2])) == [5, 6, 2, 2]


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
        cursor.execute(f"SELECT count(*) FROM {search.TABLE} WHERE body LIKE %s", [f"%{mark}%"])
        assert cursor.fetchone()[0] == 0

"""The content-store migration converts a database stored the old way, and what it held reads the same."""

import pytest

BEFORE = [("whyops_local", "0003_event_type_choices")]


def _newest():
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    return MigrationLoader(connection).graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_stored_bodies_and_histories_are_converted_and_read_back_the_same(migrate_to):
    old = migrate_to(BEFORE)
    agent = old.get_model("whyops_local", "Agent").objects.create(name="old")
    trace = old.get_model("whyops_local", "Trace").objects.create(
        trace_id="old-trace", agent=agent, started_at="2026-01-01T00:00:00Z", last_event_at="2026-01-01T00:00:00Z")
    Exchange, Event = old.get_model("whyops_local", "Exchange"), old.get_model("whyops_local", "Event")
    histories = [[{"role": "user", "content": f"turn {n} " + "x" * 300} for n in range(turns)] for turns in (2, 3, 4)]
    bodies = [('{"model": "m", "messages": ' + str(h).replace("'", '"') + "}") for h in histories]
    for step, (history, body) in enumerate(zip(histories, bodies, strict=True), 1):
        exchange = Exchange.objects.create(provider="openai", method="POST", path="/v1/chat/completions", status=200,
                                           request_body=body, response_body="data: é\n\n", chunks=[[1.0, "data: é\n\n"]],
                                           started_at="2026-01-01T00:00:00Z")
        Event.objects.create(trace=trace, agent=agent, event_type="user_message", step_id=step, span_id=f"s{step}",
                             timestamp="2026-01-01T00:00:00Z", content={"messages": history}, exchange=exchange)
    migrate_to(_newest())

    from whyops_local.models import Event as NewEvent
    from whyops_local.models import Trace

    events = list(NewEvent.objects.filter(trace__trace_id="old-trace").order_by("step_id"))
    assert [e.content["messages"] for e in events] == histories
    exchanges = [e.exchange for e in events]
    assert [x.request_bytes() for x in exchanges] == [b.encode() for b in bodies]
    assert exchanges[1].request_base == exchanges[0].pk  # now a delta of the one before
    assert all(x.request_dictionary for x in exchanges)  # squeezed with the messages they hold
    assert exchanges[2].chunks == [[1.0, "data: é\n\n"]] and exchanges[2].response_bytes() == "data: é\n\n".encode()
    assert list(Trace.objects.filtered(q="turn 3")) == [events[0].trace]  # and searchable
    assert list(Trace.objects.filtered(q="LD-TRA")) == [events[0].trace]  # by its id too, through the index

    from whyops_local.domain import delta  # and back: deltas of one another, squeezed alone

    back = migrate_to([("whyops_local", "0011_otel_conversations")]).get_model("whyops_local", "Exchange")
    built = {}
    for x in back.objects.filter(pk__in=[x.pk for x in exchanges]).order_by("pk"):
        data = delta.unsqueeze(bytes(x.request_data))
        built[x.pk] = data if x.request_base is None else delta.join(
            built[x.request_base], x.request_prefix, x.request_suffix, data)
    assert list(built.values()) == [b.encode() for b in bodies]


@pytest.mark.django_db(transaction=True)
def test_messages_stored_once_per_trace_become_one_shared_message(migrate_to):
    from whyops_local.domain import delta, jsontext

    old = migrate_to([("whyops_local", "0008_search_indexes")])
    agent = old.get_model("whyops_local", "Agent").objects.create(name="old-shared")
    Trace, Event = old.get_model("whyops_local", "Trace"), old.get_model("whyops_local", "Event")
    MessageBlob = old.get_model("whyops_local", "MessageBlob")
    shared = {"role": "system", "content": "a shared prompt, kestrel"}
    histories = {name: [shared, {"role": "user", "content": f"question of {name}"}] for name in ("one", "two")}
    for name, history in histories.items():
        trace = Trace.objects.create(trace_id=f"old-shared-{name}", agent=agent, started_at="2026-01-01T00:00:00Z",
                                     last_event_at="2026-01-01T00:00:00Z")
        ids = [MessageBlob.objects.create(trace=trace, digest=delta.digest(jsontext.dumps(m).encode()),
                                          data=jsontext.dumps(m)).pk for m in history]
        Event.objects.create(trace=trace, agent=agent, event_type="user_message", step_id=1, span_id=f"s-{name}",
                             timestamp="2026-01-01T00:00:00Z", content={"messages": None},
                             packing={"messages": delta.runs(ids)})
    migrate_to(_newest())

    from whyops_local.models import Event as NewEvent
    from whyops_local.models import Message
    from whyops_local.models import Trace as NewTrace

    assert Message.objects.filter(digest=delta.digest(jsontext.dumps(shared).encode())).count() == 1
    assert Message.objects.filter(uses__trace__trace_id__startswith="old-shared-").distinct().count() == 3
    for name, history in histories.items():
        assert NewEvent.objects.get(trace__trace_id=f"old-shared-{name}").content["messages"] == history
    assert sorted(t.trace_id for t in NewTrace.objects.filtered(q="prompt, kestrel")) == ["old-shared-one", "old-shared-two"]
    assert [t.trace_id for t in NewTrace.objects.filtered(q="question of two")] == ["old-shared-two"]


@pytest.mark.django_db(transaction=True)
def test_exchanges_stored_whole_are_packed_against_their_traces_first_and_back(migrate_to):
    from whyops_local.domain import delta

    old = migrate_to([("whyops_local", "0011_otel_conversations")])
    agent = old.get_model("whyops_local", "Agent").objects.create(name="old-heads")
    trace = old.get_model("whyops_local", "Trace").objects.create(
        trace_id="old-heads", agent=agent, started_at="2026-01-01T00:00:00Z", last_event_at="2026-01-01T00:00:00Z")
    Exchange, Event = old.get_model("whyops_local", "Exchange"), old.get_model("whyops_local", "Event")
    heads = [{"host": "h", "user-agent": "u", "content-length": str(n)} for n in (10, 20, 30)]
    heads[2].pop("user-agent")
    answers = [b'{"id": "chatcmpl-%d", "choices": [{"message": {"content": "Hello there"}}]}' % n for n in range(3)]
    for step, (head, answer) in enumerate(zip(heads, answers, strict=True), 1):
        exchange = Exchange.objects.create(
            provider="openai", method="POST", path="/v1/chat/completions", status=200, request_headers=head,
            response_headers={"date": f"d{step}", "server": "s"}, request_data=b"{}", response_data=delta.squeeze(answer),
            started_at="2026-01-01T00:00:00Z")
        Event.objects.create(trace=trace, agent=agent, event_type="llm_response", step_id=step, span_id=f"s{step}",
                             timestamp="2026-01-01T00:00:00Z", exchange=exchange)

    def read(Model) -> list:
        return [(x.request_headers, x.response_headers, x.response_bytes())
                for x in Model.objects.filter(events__trace__trace_id="old-heads").order_by("pk")]

    migrate_to(_newest())
    from whyops_local.models import Exchange as NewExchange

    packed = list(NewExchange.objects.filter(events__trace__trace_id="old-heads").order_by("pk"))
    assert [x.pack_base for x in packed] == [None, packed[0].pk, packed[0].pk]
    assert read(NewExchange) == [(head, {"date": f"d{n}", "server": "s"}, answer)
                                 for n, (head, answer) in enumerate(zip(heads, answers, strict=True), 1)]
    back = migrate_to([("whyops_local", "0011_otel_conversations")]).get_model("whyops_local", "Exchange")
    rows = back.objects.filter(events__trace__trace_id="old-heads").order_by("pk")
    assert [(x.request_headers, delta.unsqueeze(bytes(x.response_data))) for x in rows] == list(
        zip(heads, answers, strict=True))


@pytest.mark.django_db(transaction=True)
def test_metadata_stored_as_patches_is_made_whole_going_back(migrate_to):
    from whyops_local.domain.schemas import EventIn
    from whyops_local.models import Event

    from .storing import record_events

    metadata = [{"model": "m", "provider": "openai", "usage": {"promptTokens": n}, "latencyMs": 1.5} for n in (10, 20)]
    for step, said in enumerate(metadata, 1):  # a request each: the second is patched against the first
        record_events([EventIn.model_validate({"eventType": "llm_response", "traceId": "going-back", "agentName": "old",
                                               "stepId": step, "content": {"content": "hi"}, "metadata": said})])
    stored = Event.objects.filter(trace__trace_id="going-back").order_by("step_id").values_list("metadata", "packing")
    assert [packing for _, packing in stored][1] == {"like": Event.objects.get(step_id=1).pk}
    old = migrate_to([("whyops_local", "0012_packed_exchanges")])
    rows = old.get_model("whyops_local", "Event").objects.filter(trace__trace_id="going-back").order_by("step_id")
    assert list(rows.values_list("metadata", "packing")) == [(metadata[0], None), (metadata[1], None)]

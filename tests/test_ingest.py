import json

import pytest
from django.db.models import JSONField

from whyops_local.models import Agent, Event, Trace

pytestmark = pytest.mark.django_db


def ingest(client, body, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/events/ingest", data, content_type="application/json", headers=headers)


def event(event_type="user_message", trace="t1", **fields):
    return {"eventType": event_type, "traceId": trace, "agentName": "support", **fields}


def test_an_event_is_stored_with_201_and_its_assigned_step(client):
    response = ingest(client, event(content={"messages": [{"role": "user", "content": "hi"}]}))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "saved" and body["stepId"] == 1 and body["parentStepId"] is None
    stored = Event.objects.get(pk=body["id"])
    assert stored.content == {"messages": [{"role": "user", "content": "hi"}]}
    assert stored.span_id == body["spanId"] and len(stored.span_id) == 36


def test_an_unknown_agent_is_created_with_a_version_from_the_event_metadata(client):
    ingest(client, event(metadata={"systemPrompt": "be brief", "tools": [{"name": "search"}]}))
    agent = Agent.objects.get(name="support")
    assert agent.latest_version().system_prompt == "be brief"
    assert Event.objects.get().agent_version == agent.latest_version()


def test_steps_are_assigned_in_arrival_order_with_the_previous_step_as_parent(client):
    steps = [ingest(client, event()).json() for _ in range(3)]
    assert [(s["stepId"], s["parentStepId"]) for s in steps] == [(1, None), (2, 1), (3, 2)]


def test_a_given_step_gets_the_step_before_as_parent_and_a_given_parent_is_kept(client):
    assert ingest(client, event(stepId=5)).json()["parentStepId"] == 4
    assert ingest(client, event(stepId=0)).json()["stepId"] == 0
    kept = ingest(client, event(stepId=7, parentStepId=2)).json()
    assert (kept["stepId"], kept["parentStepId"]) == (7, 2)
    assert ingest(client, event()).json()["stepId"] == 8


def test_an_array_is_stored_atomically_and_answered_with_an_array(client):
    response = ingest(client, [event(), event("llm_thinking", content={"type": "thinking", "thinking": "hm"})])
    assert response.status_code == 201
    assert [r["stepId"] for r in response.json()] == [1, 2]
    assert Trace.objects.get().event_count == 2


def test_the_same_idempotency_key_is_stored_once_and_answered_skipped(client):
    first = ingest(client, event(idempotencyKey="k1")).json()
    again = ingest(client, event(idempotencyKey="k1", content="different")).json()
    assert again["status"] == "skipped" and again["id"] == first["id"]
    in_one_array = ingest(client, [event(idempotencyKey="k2"), event(idempotencyKey="k2")]).json()
    assert [r["status"] for r in in_one_array] == ["saved", "skipped"]
    assert Event.objects.count() == 2
    assert Trace.objects.get().event_count == 2


def test_repeated_content_without_a_key_is_kept(client):
    ingest(client, event(content={"messages": [{"role": "user", "content": "yes"}]}))
    ingest(client, event(content={"messages": [{"role": "user", "content": "yes"}]}))
    assert Event.objects.count() == 2


def test_timestamps_with_any_offset_are_accepted_and_kept_in_utc(client):
    ingest(client, event(timestamp="2026-01-01T12:00:00+05:30"))
    ingest(client, event(timestamp="2026-01-01T05:00:00Z"))
    ingest(client, event(timestamp="2026-01-01T07:00:00"))
    trace = Trace.objects.get()
    assert trace.started_at.isoformat() == "2026-01-01T05:00:00+00:00"
    assert trace.last_event_at.isoformat() == "2026-01-01T07:00:00+00:00"
    assert trace.summary_dict()["durationMs"] == 2 * 3600 * 1000


def test_the_external_user_comes_from_the_body_or_the_header(client):
    ingest(client, event(trace="a", externalUserId="user_1"))
    ingest(client, event(trace="b"), **{"X-External-User-Id": "user_2"})
    assert Trace.objects.get(trace_id="a").external_user_id == "user_1"
    assert Event.objects.get(trace__trace_id="b").external_user_id == "user_2"


def test_the_trace_totals_count_errors_calls_tools_and_tokens(client):
    usage = {"promptTokens": 1200, "completionTokens": 240, "totalTokens": 9940,
             "cacheReadTokens": 8200, "cacheCreationTokens": 300}
    ingest(client, [
        event(),
        event("tool_call_request", spanId="s1", metadata={"tool": "search_orders"}),
        event("tool_call_response", spanId="s1", metadata={"tool": "search_orders"}),
        event("llm_response", metadata={"model": "anthropic/claude-sonnet-4-5", "provider": "anthropic", "usage": usage}),
        event("error", content={"message": "boom"}),
    ])
    summary = Trace.objects.get().summary_dict()
    assert (summary["eventCount"], summary["errorCount"], summary["llmCalls"], summary["toolCalls"]) == (5, 1, 1, 1)
    assert summary["tokens"] == {"input": 1200, "cacheRead": 8200, "cacheWrite": 300, "cacheWrite1h": 0,
                                 "output": 240, "reasoning": 0}
    assert summary["usage"] == {**usage, "promptTokens": 9700}  # the older block: prompt tokens include the cache
    assert summary["models"] == ["anthropic/claude-sonnet-4-5"]


# Bad input: a clear 4xx naming the field, and nothing stored.

BAD_EVENTS = [
    (event(eventType="chat"), "eventType"),
    ({"traceId": "t1", "agentName": "a"}, "eventType"),
    (event(traceId=""), "traceId"),
    (event(traceId="x" * 129), "traceId"),
    (event(traceId=12), "traceId"),
    ({"eventType": "user_message", "traceId": "t1"}, "agentName"),
    (event(stepId="3"), "stepId"),
    (event(stepId=-1), "stepId"),
    (event(parentStepId=1.5), "parentStepId"),
    (event(timestamp="yesterday"), "timestamp"),
    (event(metadata=[1]), "metadata"),
    (event(spanId="s" * 129), "spanId"),
    (event(idempotencyKey=""), "idempotencyKey"),
    (event("llm_response", metadata={"provider": "openai"}), "metadata.model"),
    (event("llm_response", metadata={"model": "gpt-4o"}), "metadata.provider"),
    (event("embedding_response"), "metadata.model"),
    (event("tool_call_request"), "metadata.tool"),
    (event("tool_call_response", metadata={"tool": ""}), "metadata.tool"),
    (event("llm_response", metadata={"model": "m", "provider": "p", "usage": {"promptTokens": "12"}}),
     "metadata.usage.promptTokens"),
    (event("llm_response", metadata={"model": "m", "provider": "p", "usage": {"completionTokens": -1}}),
     "metadata.usage.completionTokens"),
    (event("llm_response", metadata={"model": "m", "provider": "p", "latencyMs": "fast"}), "metadata.latencyMs"),
]


@pytest.mark.parametrize(("body", "field"), BAD_EVENTS, ids=[f for _, f in BAD_EVENTS])
def test_a_bad_event_is_refused_naming_its_field(client, body, field):
    response = ingest(client, body)
    assert response.status_code == 400
    assert response.json()["error"] == "Validation failed"
    assert field in [d["field"] for d in response.json()["details"]]
    assert not Event.objects.exists() and not Trace.objects.exists() and not Agent.objects.exists()


def test_a_batch_with_one_bad_item_is_refused_whole_naming_the_index(client):
    response = ingest(client, [event(), event(), event("tool_call_request")])
    assert response.status_code == 400
    assert [d["field"] for d in response.json()["details"]] == ["2.metadata.tool"]
    assert not Event.objects.exists() and not Trace.objects.exists()


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"eventType": "user_message",', "\"just a string\"", b"[]",
                                  b'{"eventType": "user_message", "traceId": "t", "agentName": "a", "content": NaN}'])
def test_a_body_that_is_not_an_event_gets_400_json(client, body):
    response = ingest(client, body)
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "body"
    assert not Event.objects.exists()


def test_an_oversized_body_gets_413_json(client, settings):
    settings.WHYOPS_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = ingest(client, event(content="x" * 2000))
    assert response.status_code == 413
    assert "too large" in response.json()["error"]
    assert not Event.objects.exists()


def test_with_a_server_key_ingest_needs_it_and_answers_401_not_5xx(client, settings):
    settings.WHYOPS_API_KEY = "YOPS-secret"
    assert ingest(client, event()).status_code == 401
    assert ingest(client, event(), Authorization="Bearer YOPS-secret").status_code == 201


def _json_value(sent):
    # JSON text (SQLite), or psycopg's Jsonb wrapping the value (PostgreSQL).
    return sent.obj if hasattr(sent, "obj") else json.loads(sent)


def test_the_hot_path_sends_the_same_column_values_as_django_would(client):
    from django.db import connection

    from whyops_local.storage.rows import _EVENT_FIELDS, _TOTAL_FIELDS, _db_values

    ingest(client, event("llm_response", spanId="s", externalUserId="u", idempotencyKey="k", stepId=3,
                         timestamp="2026-01-01T00:00:00.5+02:00", content={"content": "é"},
                         metadata={"model": "gpt-4o-mini", "provider": "openai", "latencyMs": 12,
                                   "usage": {"promptTokens": 7}}))
    stored, trace = Event.objects.get(), Trace.objects.get()
    for fields, obj in ((_EVENT_FIELDS, stored), (_TOTAL_FIELDS, trace)):
        ours = _db_values(fields, [obj], connection)
        djangos = [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]
        for field, mine, theirs in zip(fields, ours, djangos, strict=True):
            if isinstance(field, JSONField) and mine is not None:  # the same JSON, maybe written more tightly
                mine, theirs = _json_value(mine), _json_value(theirs)
            assert mine == theirs, field.name


def test_numbers_beyond_64_bits_and_any_unicode_are_kept_exactly(client):
    # PostgreSQL's jsonb holds neither a NUL nor a lone surrogate: such values are kept another way there.
    content = {"big": 2**70, "text": "é ✓ \U0001f600", "lone": "\ud800", "nul": "a\x00b", "\udc00": ["\x00"]}
    body = json.dumps(event(content=content)).encode()
    assert client.post("/api/events/ingest", body, content_type="application/json").status_code == 201
    assert Event.objects.get().content == content

"""Input that once broke the writer or the pages: refused with a 400 naming the field, or shown safely."""

import json

import httpx
import pytest

from tests.pages_fixtures import support_trace
from tests.proxy_fixtures import read_trace
from tests.storing import record_events
from whyops_local.domain.schemas import EventIn
from whyops_local.models import Event, Trace

pytestmark = pytest.mark.django_db(transaction=True)


def event(**fields) -> dict:
    return {"eventType": "user_message", "traceId": "t-hostile", "agentName": "a", **fields}


def ingest(client, body) -> tuple[int, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = client.post("/api/events/ingest", raw, content_type="application/json")
    assert answer["Content-Type"] == "application/json"
    return answer.status_code, answer.json()


def fields_of(answer: dict) -> list[str]:
    return [detail["field"] for detail in answer["details"]]


@pytest.mark.parametrize("field", ["traceId", "agentName", "spanId", "externalUserId", "idempotencyKey"])
@pytest.mark.parametrize("bad", ["a\nb", "tab\there", "nul\x00", "del\x7f"])
def test_ids_with_control_characters_are_refused_naming_the_field(client, field, bad):
    status, answer = ingest(client, event(**{field: bad}))
    assert (status, fields_of(answer)) == (400, [field])
    assert not Event.objects.exists()


def test_an_agent_name_with_a_newline_cannot_be_registered(client):
    answer = client.post("/api/entities/init", {"agentName": "a\nb", "metadata": {"systemPrompt": "s"}},
                         content_type="application/json")
    assert answer.status_code == 400 and fields_of(answer.json()) == ["agentName"]


@pytest.mark.parametrize(("fields", "field"), [
    ({"stepId": 2**63}, "stepId"),
    ({"parentStepId": int("9" * 20)}, "parentStepId"),
    ({"eventType": "llm_response", "metadata": {"model": "m", "provider": "p", "usage": {"promptTokens": 10**20}}},
     "metadata.usage.promptTokens"),
    ({"eventType": "llm_response", "metadata": {"model": "m", "provider": "p", "usage": {"completionTokens": 2**64}}},
     "metadata.usage.completionTokens"),
    ({"timestamp": "9999-12-31T23:59:59-05:00"}, "timestamp"),
    ({"timestamp": "0001-01-01T00:00:00+05:00"}, "timestamp"),
    ({"timestamp": "9999-12-31T23:59:59Z"}, "timestamp"),  # would pin the trace to the top of every list
    ({"timestamp": "1900-01-01T00:00:00Z"}, "timestamp"),
])
def test_values_the_store_cannot_hold_are_refused_naming_the_field(client, fields, field):
    status, answer = ingest(client, event(**fields))
    assert (status, fields_of(answer)) == (400, [field])
    assert not Trace.objects.exists()


def test_a_400_digit_integer_is_malformed_json_not_a_crash(client):
    status, answer = ingest(client, b'{"eventType": "user_message", "traceId": "t", "agentName": "a", "stepId": '
                            + b"9" * 5000 + b"}")
    assert status == 400 and fields_of(answer) == ["body"]


@pytest.mark.parametrize("depth", [101, 10_000])
def test_json_nested_too_deep_is_refused(client, depth):
    body = b'{"eventType": "user_message", "traceId": "t", "agentName": "a", "content": ' + b"[" * depth + b"]" * depth + b"}"
    status, answer = ingest(client, body)
    assert status == 400 and answer["details"][0]["code"] == "too_deep"


def test_json_nested_within_the_limit_is_stored(client):
    status, _ = ingest(client, event(content=json.loads("[" * 90 + "]" * 90)))
    assert status == 201


def test_a_lone_surrogate_is_kept_by_the_api_and_shown_by_the_pages(client):
    support_trace("t-surrogate")
    record_events([EventIn.model_validate(event(traceId="t-surrogate", content={"messages": [
        {"role": "user", "content": "x\udc00y"}]}))])
    stored = client.get("/api/traces/t-surrogate").json()["events"][-1]
    assert stored["content"]["messages"][0]["content"] == "x\udc00y"
    for url in ("/", "/traces/t-surrogate", "/agents/"):
        assert client.get(url).status_code == 200, url
    panel = client.get(f"/traces/t-surrogate?step={stored['stepId']}&partial=panel")
    assert panel.status_code == 200 and "x?y" in panel.content.decode()


def test_a_proxied_call_nested_too_deep_to_store_as_json_is_recorded_and_shown(proxied, fake, trace_id):
    # 950 levels: read by the proxy's parser (orjson: up to 1,024), past what JSON text is written for.
    raw = ('{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": ' + "[" * 950 + '"x"' + "]" * 950 + "}]}")
    answer = httpx.post(f"{proxied.proxy}/v1/chat/completions", content=raw.encode(),
                        headers={"X-Trace-ID": trace_id, "Content-Type": "application/json"})
    assert answer.status_code == 200
    recorded = read_trace(proxied, trace_id, 2)
    assert [e["eventType"] for e in recorded["events"]] == ["user_message", "llm_response"]
    exchange = httpx.get(f"{proxied.url}/api/exchanges/{recorded['events'][0]['exchangeId']}").json()
    assert exchange["requestBody"] == raw  # the raw exchange keeps it whole
    assert httpx.get(f"{proxied.url}/traces/{trace_id}").status_code == 200
    assert httpx.get(f"{proxied.url}/traces/{trace_id}?step=1&partial=panel").status_code == 200


def test_a_proxied_body_nested_past_any_parser_is_refused_before_the_provider(proxied, fake):
    before = len(fake.requests)
    raw = '{"model": "gpt-4o-mini", "messages": ' + "[" * 5000 + "]" * 5000 + "}"
    answer = httpx.post(f"{proxied.proxy}/v1/chat/completions", content=raw.encode(),
                        headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_request_error"
    assert len(fake.requests) == before


def test_the_live_server_keeps_its_writer_after_a_body_that_once_ended_it(server):
    deep = b'{"eventType": "user_message", "traceId": "t", "agentName": "a", "content": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    refused = httpx.post(f"{server.api}/events/ingest", content=deep, headers={"Content-Type": "application/json"})
    assert refused.status_code == 400 and refused.json()["details"][0]["code"] == "too_deep"
    stored = httpx.post(f"{server.api}/events/ingest", json=event(traceId="t-after-deep"))
    assert stored.status_code == 201
    log = (server.data_dir / f"server-{server.port}.log").read_text()
    assert "writer process stopped" not in log

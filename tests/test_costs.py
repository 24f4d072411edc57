"""Per-event costs add up the same everywhere they are shown, whatever order events arrive in."""

import uuid
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase
from whyops import WhyOps

from tests.storing import record_events
from whyops_local.domain.schemas import EventIn
from whyops_local.models import Event, Trace


def llm(trace, model, provider, usage, **fields):
    return EventIn.model_validate({"eventType": "llm_response", "traceId": trace, "agentName": "a",
                                   "metadata": {"model": model, "provider": provider, "usage": usage}, **fields})


@pytest.mark.django_db
def test_a_trace_with_an_unpriced_call_shows_its_known_sum_as_incomplete(client):
    record_events([llm("t", "gpt-4o-mini", "openai", {"promptTokens": 1_000_000}),
                   llm("t", "llama3.1:8b", "ollama", {"promptTokens": 5})])
    summary = client.get("/api/traces/t").json()
    assert summary["costUsd"] == 0.15 and summary["costComplete"] is False
    unpriced = summary["events"][1]
    assert unpriced["costUsd"] is None and unpriced["costNote"] == "price unknown for ollama/llama3.1:8b"


@pytest.mark.django_db
def test_a_trace_whose_only_call_is_unpriced_has_no_cost_not_zero(client):
    record_events([llm("t", "llama3.1:8b", "ollama", {"promptTokens": 5})])
    assert client.get("/api/traces/t").json()["costUsd"] is None


@pytest.mark.django_db
def test_a_trace_with_nothing_to_price_costs_zero(client):
    record_events([EventIn.model_validate({"eventType": "user_message", "traceId": "t", "agentName": "a"})])
    assert client.get("/api/traces/t").json()["costUsd"] == 0.0


@pytest.mark.django_db
def test_a_pricing_failure_never_breaks_ingestion(client, monkeypatch):
    def broken(*args):
        raise RuntimeError("price table exploded")

    monkeypatch.setattr("whyops_local.domain.pricing._from_bundled", broken)
    response = client.post("/api/events/ingest", llm("t", "gpt-4o", "openai", {"promptTokens": 3}).model_dump(),
                           content_type="application/json")
    assert response.status_code == 201
    event = Event.objects.get()
    assert event.cost_usd is None and "price table exploded" in event.cost_note


EVENT = st.tuples(
    st.sampled_from(["t1", "t2", "t3"]),
    st.sampled_from([("gpt-4o-mini", "openai"), ("claude-sonnet-4-5", "anthropic"), ("llama3.1:8b", "ollama"),
                     ("text-embedding-3-small", "openai")]),
    st.integers(0, 50_000), st.integers(0, 5_000), st.integers(0, 20_000),
    st.sampled_from(["u1", "u2", None]),
    st.integers(0, 10_000),  # seconds into the day: events arrive out of order
)


class TotalsAgree(HypothesisTestCase):
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.lists(EVENT, min_size=1, max_size=4), min_size=1, max_size=6))
    def test_totals_equal_the_sum_of_their_parts(self, requests):
        for request in requests:
            items = []
            for trace, (model, provider), prompt, completion, cached, user, second in request:
                kind = "embedding_response" if model.startswith("text-embedding") else "llm_response"
                usage = ({"totalTokens": prompt} if kind == "embedding_response" else
                         {"promptTokens": prompt, "completionTokens": completion,
                          "cacheReadTokens": min(cached, prompt) if provider == "openai" else cached})
                items.append(EventIn.model_validate({
                    "eventType": kind, "traceId": trace, "agentName": "a",
                    "timestamp": f"2026-01-01T{second // 3600:02}:{second // 60 % 60:02}:{second % 60:02}Z",
                    **({"externalUserId": user} if user else {}),
                    "metadata": {"model": model, "provider": provider, "usage": usage}}))
            record_events(items)

        events = list(Event.objects.all())
        known = sum((e.cost_usd for e in events if e.cost_usd is not None), Decimal(0))
        traces = list(Trace.objects.all())
        assert sum((t.cost_usd or Decimal(0) for t in traces), Decimal(0)) == known
        for trace in traces:
            mine = [e for e in events if e.trace_id == trace.pk]
            assert (trace.cost_usd or Decimal(0)) == sum((e.cost_usd or Decimal(0) for e in mine), Decimal(0))
            assert trace.cost_complete == all(e.cost_usd is not None for e in mine)
            for bucket in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "total_tokens"):
                assert getattr(trace, bucket) == sum(getattr(e, bucket) for e in mine)
            assert trace.started_at == min(e.timestamp for e in mine)
            assert trace.last_event_at == max(e.timestamp for e in mine)

        agent = self.client.get("/api/agents/a").json()
        assert Decimal(str(agent["totals"]["costUsd"] or 0)) == known.quantize(Decimal("1e-10"))
        assert agent["totals"]["eventCount"] == len(events)
        by_model = self.client.get("/api/models").json()["models"]
        assert sum(m["eventCount"] for m in by_model) == len(events)
        assert sum(Decimal(str(m["costUsd"] or 0)) for m in by_model) == pytest.approx(known)
        for user in ("u1", "u2"):
            expected = sum((t.cost_usd or Decimal(0) for t in traces if t.external_user_id == user), Decimal(0))
            shown = self.client.get(f"/api/users/{user}").json()["totals"]["costUsd"] or 0
            assert Decimal(str(shown)) == pytest.approx(expected)


def test_the_seed_prompt_caching_example_is_costed_end_to_end(server):
    sdk = WhyOps(api_key="k", agent_name="caching", agent_metadata={"systemPrompt": "s", "tools": []},
                 analyse_base_url=server.api, proxy_base_url=server.proxy)
    trace_id = f"cache-{uuid.uuid4().hex}"
    sdk.trace(trace_id).llm_response_sync(
        "anthropic/claude-sonnet-4-5", "anthropic", "Done.",
        usage={"promptTokens": 1200, "completionTokens": 240, "totalTokens": 9940,
               "cacheReadTokens": 8200, "cacheCreationTokens": 300},
        latency_ms=860)
    read = httpx.get(f"{server.api}/traces/{trace_id}").json()
    # 1200 x $3 + 8200 x $0.30 + 300 x $3.75 + 240 x $15, per million tokens
    assert read["events"][0]["costUsd"] == read["costUsd"] == 0.010785
    assert read["costComplete"] is True
    assert "claude-sonnet-4-5" in read["events"][0]["costNote"]

"""Migration 0004 converts stored counts to the one meaning, with the rule pricing applies."""

from datetime import UTC, datetime

import pytest

BEFORE = [("whyops_local", "0003_event_type_choices")]
AFTER = [("whyops_local", "0004_token_buckets")]


@pytest.mark.django_db(transaction=True)
def test_existing_rows_get_uncached_input_canonical_models_and_trace_sums(migrate_to):
    old = migrate_to(BEFORE)
    agent = old.get_model("whyops_local", "Agent").objects.create(id="a", name="a")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    trace = old.get_model("whyops_local", "Trace").objects.create(
        trace_id="t", agent=agent, started_at=now, last_event_at=now, prompt_tokens=999,
        model_names=["openai/gpt-4o-mini", "claude-sonnet-4-5"])
    Event = old.get_model("whyops_local", "Event")
    common = {"trace": trace, "agent": agent, "event_type": "llm_response", "span_id": "s", "timestamp": now}
    Event.objects.create(step_id=1, model="openai/gpt-4o-mini", provider="", prompt_tokens=120, completion_tokens=12,
                         cache_read_tokens=100, total_tokens=132,
                         metadata={"usage": {"promptTokens": 120, "completionTokens": 12, "reasoningTokens": 8}}, **common)
    Event.objects.create(step_id=2, model="claude-sonnet-4-5", provider="Anthropic", prompt_tokens=25,
                         completion_tokens=15, cache_read_tokens=100, cache_creation_tokens=50, total_tokens=190,
                         metadata={"usage": {"cacheCreationTokens": 50, "cacheCreation1hTokens": 30}}, **common)

    new = migrate_to(AFTER)
    events = new.get_model("whyops_local", "Event").objects.order_by("step_id")
    fields = ("provider", "model", "input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens",
              "output_tokens", "reasoning_tokens", "total_tokens")
    assert [tuple(getattr(e, f) for f in fields) for e in events] == [
        ("openai", "gpt-4o-mini", 20, 100, 0, 0, 12, 8, 132),
        ("anthropic", "claude-sonnet-4-5", 25, 100, 50, 30, 15, 0, 190)]
    trace = new.get_model("whyops_local", "Trace").objects.get()
    assert (trace.input_tokens, trace.cache_read_tokens, trace.cache_write_tokens, trace.output_tokens,
            trace.reasoning_tokens, trace.total_tokens) == (45, 200, 50, 27, 8, 322)
    assert trace.model_names == ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"]

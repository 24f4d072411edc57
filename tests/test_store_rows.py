"""The hot path builds its events without Model.__init__: they must be the events Django would build."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from whyops_local.models import Agent, Event, Exchange, Trace
from whyops_local.storage import rows as store

pytestmark = pytest.mark.django_db

VALUES = {
    "content": {"text": "héllo ✓", "list": [1, 2.5, None, True]},
    "metadata": {},
    "cost_usd": Decimal("0.0001235"),
}


@pytest.mark.parametrize("timestamp", [
    datetime(2026, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=-7))),  # no microseconds, an offset
    datetime(2026, 5, 1, 19, 30, 0, 123456, tzinfo=UTC),
])
def test_a_hot_path_event_is_the_event_django_would_build(timestamp):
    agent = Agent.objects.create(name="rows")
    trace = Trace.objects.create(trace_id="rows", agent=agent, started_at=timestamp, last_event_at=timestamp)
    exchange = Exchange.objects.create(provider="openai", method="POST", path="/v1/x", started_at=timestamp)
    values = {
        "agent_version_id": None, "event_type": "llm_response", "step_id": 3, "parent_step_id": 2, "span_id": "s",
        "external_user_id": None, "idempotency_key": "k", "source": "proxy", "model": "m", "provider": "p",
        "latency_ms": 1.5, "input_tokens": 1, "output_tokens": 2, "cache_read_tokens": 0,
        "cache_write_tokens": 0, "cache_write_1h_tokens": 0, "reasoning_tokens": 1, "total_tokens": 3, "cost_note": "",
        "counted": True, "packing": None, "timestamp": timestamp, **VALUES,
    }
    fast = store._new_event({"trace": trace, "agent": agent, "exchange": exchange}, **values)
    usual = Event(trace=trace, agent=agent, exchange=exchange, **values)
    attnames = [f.attname for f in Event._meta.concrete_fields]
    assert [getattr(fast, name) for name in attnames] == [getattr(usual, name) for name in attnames]
    assert fast.trace is trace and fast.exchange is exchange  # no query, as with __init__
    store._insert([fast])
    stored = Event.objects.get(pk=fast.pk)
    assert [getattr(stored, name) for name in attnames if name != "id"] == [
        getattr(usual, name) for name in attnames if name != "id"]

"""One model, one name: provider + canonical name, however a client spells it; snapshots under their family."""

import pytest

from tests.storing import record_events
from whyops_local.domain import pricing
from whyops_local.domain.schemas import EventIn

USAGE = {"promptTokens": 1000, "completionTokens": 100}


def llm(trace, model, provider="openai"):
    return EventIn.model_validate({"eventType": "llm_response", "traceId": trace, "agentName": "a",
                                   "metadata": {"model": model, "provider": provider, "usage": USAGE}})


def trace_ids(client, model):
    return sorted(t["traceId"] for t in client.get("/api/traces", {"model": model}).json()["traces"])


def test_both_spellings_are_one_model(client):
    record_events([llm("both", "openai/gpt-4o-mini"), llm("both", "gpt-4o-mini"), llm("both", "OpenAI/gpt-4o-mini")])
    models = client.get("/api/models").json()["models"]
    assert [(m["model"], m["provider"], m["name"], m["family"], m["eventCount"]) for m in models] == [
        ("openai/gpt-4o-mini", "openai", "gpt-4o-mini", "openai/gpt-4o-mini", 3)]
    assert models[0]["tokens"]["input"] == 3000
    assert client.get("/api/traces/both").json()["models"] == ["openai/gpt-4o-mini"]
    assert trace_ids(client, "gpt-4o-mini") == trace_ids(client, "openai/gpt-4o-mini") == ["both"]
    head = client.get("/traces/both", {"partial": "head"}).content.decode()
    assert head.count('<tr data-model="') == 1 and '<tr data-model="openai/gpt-4o-mini">' in head
    listing = client.get("/", {"model": "openai/gpt-4o-mini"}).content.decode()
    assert "both" in listing


def test_a_dated_snapshot_stays_itself_and_is_found_under_its_family(client):
    record_events([llm("snapshot", "gpt-4o-2024-08-06"), llm("family", "gpt-4o"), llm("mini", "gpt-4o-mini")])
    models = {m["model"]: m["family"] for m in client.get("/api/models").json()["models"]}
    assert models == {"openai/gpt-4o": "openai/gpt-4o", "openai/gpt-4o-2024-08-06": "openai/gpt-4o",
                      "openai/gpt-4o-mini": "openai/gpt-4o-mini"}
    assert trace_ids(client, "gpt-4o") == trace_ids(client, "openai/gpt-4o") == ["family", "snapshot"]
    assert trace_ids(client, "gpt-4o-2024-08-06") == ["snapshot"]
    assert trace_ids(client, "anthropic/gpt-4o") == []


def test_a_model_with_its_own_slash_keeps_it():
    assert pricing.split_model("together", "meta-llama/Llama-3-8b") == ("together", "meta-llama/Llama-3-8b")
    assert pricing.model_name("", "openai/gpt-4o-mini") == pricing.model_name("OpenAI", "gpt-4o-mini") == "openai/gpt-4o-mini"
    assert pricing.family("ollama", "llama3.1:8b") == "llama3.1:8b"  # unknown to genai-prices: itself


pytestmark = pytest.mark.django_db

"""An Anthropic call exported over OTLP counts and costs what the same call through the proxy does.

The GenAI conventions count cache reads and writes inside ``gen_ai.usage.input_tokens``; Anthropic's
API (and so the proxy) counts them apart. Both roads must end in the same tokens and cost.
"""

import json
import uuid
from decimal import Decimal

import anthropic
import httpx
import pytest

from .proxy_fixtures import read_trace
from .servers import run_server
from .test_otlp_export import hand_span, otlp_json, post

MODEL = "claude-sonnet-4-5-cached"  # the fake upstream writes 2,048 cache tokens, then reads them


@pytest.fixture(scope="module")
def both_roads(fake_upstream, tmp_path_factory):
    data = tmp_path_factory.mktemp("whyops-otlp-tokens")
    prices = data / "prices.json"
    prices.write_text(json.dumps({"models": {MODEL: {"input": 3, "cacheRead": 0.3, "cacheWrite": 3.75, "output": 15}}}))
    env = {"WHYOPS_ANTHROPIC_BASE_URL": fake_upstream.url, "WHYOPS_PRICES_FILE": str(prices)}
    with run_server(data, env=env) as running:
        yield running


def _proxied_calls(server, trace_id: str) -> dict:
    client = anthropic.Anthropic(base_url=server.proxy, api_key="sk-ant", max_retries=0,
                                 default_headers={"X-Trace-ID": trace_id, "X-Agent-Name": "tokens-agent"})
    system = f"You are terse ({uuid.uuid4().hex})."  # a prefix of its own: the first call writes it, the second reads
    for question in ("Weather in Paris?", "And in Rome?"):
        client.messages.create(model=MODEL, max_tokens=50, system=system,
                               messages=[{"role": "user", "content": question}])
    return read_trace(server, trace_id, 4, timeout=30)


def _exported_calls(server, trace_id: str, proxied: list[dict]) -> dict:
    """The same two calls as a GenAI-conventions instrumentation reports them: input tokens with the cache."""
    spans = []
    for n, call in enumerate(proxied):
        usage = call["metadata"]["usage"]
        spans.append(hand_span(
            trace_id, f"{n + 1:016x}", f"chat {MODEL}", n * 10_000_000,
            gen_ai__operation__name="chat", gen_ai__provider__name="anthropic", gen_ai__request__model=MODEL,
            gen_ai__usage__input_tokens=usage["promptTokens"] + usage["cacheReadTokens"] + usage["cacheCreationTokens"],
            gen_ai__usage__output_tokens=usage["completionTokens"],
            gen_ai__usage__cache_read__input_tokens=usage["cacheReadTokens"],
            gen_ai__usage__cache_creation__input_tokens=usage["cacheCreationTokens"]))
    assert post(server, otlp_json(trace_id, spans, service="tokens-agent")).status_code == 200
    return read_trace(server, trace_id, 4, timeout=30)


def _calls(trace: dict) -> list[dict]:
    return [event for event in trace["events"] if event["eventType"] == "llm_response"]


def test_an_anthropic_span_with_cache_reads_and_writes_counts_and_costs_as_the_proxied_call(both_roads):
    proxied = _proxied_calls(both_roads, f"proxied-{uuid.uuid4().hex}")
    written, read = (call["tokens"] for call in _calls(proxied))
    assert (written["input"], written["cacheWrite"], written["cacheRead"]) == (25, 2048, 0)
    assert (read["input"], read["cacheWrite"], read["cacheRead"]) == (25, 0, 2048)

    exported = _exported_calls(both_roads, uuid.uuid4().hex, _calls(proxied))
    for mine, theirs in zip(_calls(exported), _calls(proxied), strict=True):
        assert mine["tokens"] == theirs["tokens"]
        assert mine["metadata"]["usage"] == theirs["metadata"]["usage"]
        assert Decimal(str(mine["costUsd"])) == Decimal(str(theirs["costUsd"]))
    assert exported["tokens"] == proxied["tokens"]
    assert exported["usage"] == proxied["usage"]
    expected = (2 * 25 * 3 + Decimal("2048") * Decimal("3.75") + 2048 * Decimal("0.3") + 2 * 15 * 15) / 1_000_000
    assert Decimal(str(exported["costUsd"])) == Decimal(str(proxied["costUsd"])) == expected
    listed = httpx.get(f"{both_roads.api}/traces", params={"agent": "tokens-agent"}).json()["traces"]
    summaries = {t["traceId"]: t for t in listed}
    assert summaries[exported["traceId"]]["costUsd"] == summaries[proxied["traceId"]]["costUsd"]

"""Fuzzing a live server: hypothesis-made ingest bodies (every event kind, hostile values everywhere) and
schemathesis over the OpenAPI document. No answer is a 5xx; refusals are 400 JSON naming a field; what is
stored reads back through the API and its page. Bounded by example counts, each in well under a minute."""

import json
import os
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from whyops_local.domain.events import EVENT_TYPES
from whyops_local.domain.schemas import USAGE_FIELDS

from .servers import run_server

# WHYOPS_FUZZ_EXAMPLES=1000 for a longer hunt by hand.
EXAMPLES = int(os.environ.get("WHYOPS_FUZZ_EXAMPLES", 120))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """A server of its own: fuzzing stores (and schemathesis deletes) all kinds of traces."""
    with run_server(tmp_path_factory.mktemp("whyops-fuzz")) as running:
        yield running


HOSTILE_TEXT = ["a\nb", "tab\there", "nul\x00", "del\x7f", "x\udc00y", "\ud800", "\u202eevil", "é漢字🙂", "a" * 300,
                "/", "a//b", "../../etc/passwd", "%2F", "?q=1#frag", " ", "<script>alert(1)</script>", "{{ 7|add:1 }}",
                "'; DROP TABLE whyops_local_event; --", "\\", '"', "null"]
HOSTILE_INTS = [0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**12, 10**12 + 1, 10**20, 10**400]
HOSTILE_TIMES = ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "1969-12-31T23:59:59Z",
                 "2026-02-30T00:00:00Z", "not a time", "", "2026-01-01T00:00:00.123456789+14:00", "2026-01-01"]

def mostly(valid, hostile):
    """``valid`` seven draws in eight: one hostile field refuses the whole body, and what is stored is fuzzed too."""
    return st.integers(0, 7).flatmap(lambda draw: hostile if draw == 0 else valid)


texts = st.one_of(st.text(max_size=24), st.sampled_from(HOSTILE_TEXT))
ids = mostly(st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), min_size=1, max_size=40),
             st.sampled_from(HOSTILE_TEXT))
ints = st.one_of(st.integers(-5, 5000), st.sampled_from(HOSTILE_INTS), st.integers(-(2**70), 2**70))
counts = mostly(st.integers(0, 10**9), ints)
numbers = st.one_of(ints, st.floats(allow_nan=False, allow_infinity=False))
times = mostly(st.datetimes(datetime(1970, 1, 2), datetime(2026, 1, 1), timezones=st.sampled_from([None, UTC]))
               .map(lambda t: t.isoformat()), st.one_of(st.sampled_from(HOSTILE_TIMES), st.datetimes().map(str), ints))
values = st.recursive(st.one_of(st.none(), st.booleans(), numbers, texts),
                      lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
                      max_leaves=16)
deep = st.sampled_from([50, 99, 100, 101, 600]).map(lambda depth: json.loads("[" * depth + "]" * depth))
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool"]) | texts,
                                           "content": st.one_of(texts, values)}), max_size=3)
usage = mostly(st.fixed_dictionaries({}, optional={name: counts for name in USAGE_FIELDS}), values)
metadata = mostly(st.fixed_dictionaries({}, optional={
    "model": texts, "provider": st.sampled_from(["openai", "anthropic", "google"]) | texts, "usage": usage,
    "latencyMs": numbers, "tool": texts, "systemPrompt": texts, "tools": values, "params": values,
    "status": ints, "costUsd": numbers, "finishReason": texts}), values)
events = st.fixed_dictionaries(
    {"eventType": mostly(st.sampled_from(EVENT_TYPES), texts), "traceId": ids, "agentName": ids},
    optional={"spanId": ids, "stepId": counts, "parentStepId": counts, "timestamp": times, "externalUserId": ids,
              "idempotencyKey": ids, "content": mostly(st.one_of(texts, values, messages), deep), "metadata": metadata})
bodies = st.one_of(events, st.lists(events, min_size=1, max_size=3))


def url_part(text: str) -> str:
    # Dots too: a client would resolve "." and ".." as path segments.
    return quote(text, safe="").replace(".", "%2E")


@FUZZ
@given(body=bodies)
@example(body={"eventType": "user_message", "traceId": "a//b", "agentName": "x//y", "externalUserId": "u//v"})
@example(body={"eventType": "llm_response", "traceId": "..", "agentName": ".", "metadata": {"usage": {"promptTokens": 2**63}}})
# What the fuzzing found: each once answered 500 from the writer.
@example(body={"eventType": "user_message", "traceId": "t", "agentName": "a", "metadata": {"systemPrompt": "x\udc00y"}})
@example(body={"eventType": "embedding_response", "traceId": "t", "agentName": "a",
               "metadata": {"model": "m", "provider": "p", "latencyMs": 10**20}})
@example(body={"eventType": "llm_response", "traceId": "t", "agentName": "a", "metadata": {"model": "p" * 70 + "/m"}})
def test_no_ingest_body_gets_a_5xx_and_what_is_stored_reads_back(fuzzed, body):
    answer = httpx.post(f"{fuzzed.api}/events/ingest", content=json.dumps(body), timeout=30,
                        headers={"Content-Type": "application/json"})
    assert answer.status_code in (201, 400), answer.text
    assert answer.headers["content-type"] == "application/json"
    if answer.status_code == 400:
        refusal = answer.json()
        assert refusal["error"] and refusal["details"] and all(detail["field"] for detail in refusal["details"])
        return
    event("stored")
    for stored in body if isinstance(body, list) else [body]:
        trace_id = url_part(stored["traceId"])
        api = httpx.get(f"{fuzzed.api}/traces/{trace_id}", timeout=30)
        assert api.status_code == 200, (stored["traceId"], api.text)
        assert httpx.get(f"{fuzzed.url}/traces/{trace_id}", timeout=30).status_code == 200
        assert httpx.get(f"{fuzzed.url}/agents/{url_part(stored['agentName'])}/", timeout=30).status_code == 200
        if user := stored.get("externalUserId"):
            assert httpx.get(f"{fuzzed.api}/users/{url_part(user)}", timeout=30).status_code == 200


def test_the_pages_listing_everything_fuzzed_still_answer(fuzzed):
    for path in ("/", "/agents/", "/users/", "/api/traces", "/api/agents", "/api/models"):
        assert httpx.get(fuzzed.url + path, timeout=30).status_code == 200, path


def test_the_openapi_document_holds_for_anything_sent(fuzzed):
    """Every operation (ingest and the read API) with schemathesis-made requests, valid and not."""
    schema = schemathesis.openapi.from_url(f"{fuzzed.api}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {"/events/ingest", "/traces", "/traces/{trace_id}"} <= {op.path.removeprefix("/api") for op in operations}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES // 6, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def holds(case):
            case.call_and_validate(base_url=fuzzed.url, timeout=30,
                                   checks=[not_a_server_error, content_type_conformance, response_schema_conformance])

        holds()

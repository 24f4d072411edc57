"""POST /v1/traces on a live server: real instrumentations exporting with the real OTLP/HTTP exporter,
hand-built OTLP JSON and protobuf, and refusals."""

import gzip
import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from whyops_local.otlp import decode, views

from .servers import ROOT, run_server

# The fake provider's models, priced as gpt-4o-mini is in the bundled data, so every call has a cost.
MINI = {"input": 0.15, "output": 0.6, "cacheRead": 0.075}


@pytest.fixture(scope="module")
def otlp_server(fake_upstream, tmp_path_factory):
    data = tmp_path_factory.mktemp("whyops-otlp")
    prices = data / "prices.json"
    prices.write_text(json.dumps({"models": {"gpt-4o-mini-tools": MINI, "gpt-4o-mini-tools-once": MINI}}))
    with run_server(data, env={"WHYOPS_PRICES_FILE": str(prices), "WHYOPS_MAX_BODY_BYTES": "200000"}) as running:
        yield running


def run_agent(script: str, server, fake_upstream, **env: str) -> dict:
    """One instrumented agent in its own process (instrumentations patch their SDK process-wide)."""
    done = subprocess.run(
        [sys.executable, "-m", f"tests.otlp_agents.{script}"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "FAKE_PROVIDER_URL": fake_upstream.url,
             "OTEL_TRACES_EXPORTER": "otlp", **env})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def traces_of(server, agent: str) -> list[dict]:
    return httpx.get(f"{server.api}/traces", params={"agent": agent}).json()["traces"]


def detail(server, trace_id: str) -> dict:
    return httpx.get(f"{server.api}/traces/{trace_id}").json()


def mini_cost(prompt: int, completion: int, cached: int = 0) -> Decimal:
    return (Decimal(prompt - cached) * Decimal("0.15") + Decimal(cached) * Decimal("0.075")
            + Decimal(completion) * Decimal("0.6")) / 1_000_000


def of_type(trace: dict, kind: str) -> list[dict]:
    return [event for event in trace["events"] if event["eventType"] == kind]


def parent_of(trace: dict, event: dict) -> dict:
    (parent,) = [e for e in trace["events"] if e["stepId"] == event["parentStepId"]]
    return parent


def assert_ordered_by_start(trace: dict) -> None:
    steps = [event["stepId"] for event in trace["events"]]
    assert steps == sorted(steps)
    assert all(event["parentStepId"] != 0 for event in trace["events"])  # every parent found


def test_openai_v2_instrumentation_with_tool_calls_streamed_and_not(otlp_server, fake_upstream):
    ran = run_agent("openai_v2", otlp_server, fake_upstream, OTEL_SEMCONV_STABILITY_OPT_IN="gen_ai_latest_experimental",
                    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="span_only")
    (summary,) = traces_of(otlp_server, "weather-agent")
    assert summary["traceId"] == ran["traceId"] and summary["externalUserId"] == "user-7"
    trace = detail(otlp_server, ran["traceId"])
    assert_ordered_by_start(trace)
    plain, streamed = of_type(trace, "llm_response")
    assert plain["metadata"]["model"] == "gpt-4o-mini-tools" and streamed["metadata"]["model"] == "gpt-4o-mini"
    # This instrumentation reports input and output tokens only (not the fake provider's cached ones).
    for answer in (plain, streamed):
        assert answer["metadata"]["usage"] == {"promptTokens": 120, "completionTokens": 12, "totalTokens": 132}
        assert answer["metadata"]["provider"] == "openai" and answer["metadata"]["latencyMs"] > 0
    assert [c["function"]["name"] for c in plain["content"]["toolCalls"]] == ["get_weather", "get_time"]
    assert streamed["content"]["content"] == "Hello world" == ran["text"]
    first_input = parent_of(trace, plain)
    assert first_input["content"]["messages"][-1] == {"role": "user", "content": "Weather and time in Paris?"}
    assert [(s["tool"], s["arguments"][0]["arguments"], s["results"], s["complete"]) for s in trace["spans"]] == [
        ("get_weather", {"city": "Paris"}, {"sky": "sunny"}, True), ("get_time", {"tz": "CET"}, {"time": "12:00"}, True)]
    (agent,) = of_type(trace, "span")
    assert agent["content"]["kind"] == "agent"
    assert {parent_of(trace, e)["stepId"] for e in of_type(trace, "user_message") + of_type(trace, "tool_call_request")} \
        == {agent["stepId"]}
    assert (summary["llmCalls"], summary["toolCalls"], summary["usage"]["totalTokens"]) == (2, 2, 264)
    assert Decimal(str(summary["costUsd"])) == 2 * mini_cost(120, 12) and summary["costComplete"]


def test_openinference_openai_instrumentation_in_a_session(otlp_server, fake_upstream):
    session = f"session-{uuid.uuid4()}"
    run_agent("openinference_openai", otlp_server, fake_upstream, SESSION_ID=session)
    trace = detail(otlp_server, session)  # session.id groups the spans, not the OTel trace id
    assert trace["agentName"] == "openinference-agent"
    assert_ordered_by_start(trace)
    answers = of_type(trace, "llm_response")
    assert [a["metadata"]["model"] for a in answers] == ["gpt-4o-mini-tools", "gpt-4o-mini"]
    assert answers[0]["metadata"]["usage"] == {"promptTokens": 120, "completionTokens": 12, "totalTokens": 132,
                                               "cacheReadTokens": 100, "reasoningTokens": 0}
    assert answers[1]["content"]["content"] == "Hello world"
    assert [(s["tool"], s["arguments"][0]["arguments"], s["results"]) for s in trace["spans"]] \
        == [("get_weather", {"city": "Paris"}, {"sky": "sunny"}), ("get_time", {"tz": "CET"}, {"sky": "sunny"})]
    calls = answers[0]["content"]["toolCalls"]
    assert [s["arguments"][0]["id"] for s in trace["spans"]] == [call["id"] for call in calls]
    assert Decimal(str(trace["costUsd"])) == 2 * mini_cost(120, 12, cached=100)
    assert trace["usage"]["cacheReadTokens"] == 200


def test_pydantic_ai_agent_with_tools(otlp_server, fake_upstream):
    run_agent("pydantic_ai_agent", otlp_server, fake_upstream)
    # pydantic-ai names no agent on its spans here: the run is the trace that used its model and both tools.
    (summary,) = traces_of(otlp_server, "weather-agent-pydantic") or [
        t for t in httpx.get(f"{otlp_server.api}/traces").json()["traces"]
        if any(model.endswith("gpt-4o-mini-tools-once") for model in t["models"]) and t["toolCalls"] == 2]
    trace = detail(otlp_server, summary["traceId"])
    assert_ordered_by_start(trace)
    answers = of_type(trace, "llm_response")
    assert len(answers) == 2 and {a["metadata"]["model"] for a in answers} == {"gpt-4o-mini-tools-once"}
    for answer in answers:
        assert answer["metadata"]["usage"]["promptTokens"] == 120
        assert answer["metadata"]["usage"]["cacheReadTokens"] == 100
    assert {c["function"]["name"] for c in answers[0]["content"]["toolCalls"]} == {"get_weather", "get_time"}
    assert answers[1]["content"]["content"] == "Hello world"
    spans = {s["tool"]: s for s in trace["spans"]}
    assert spans["get_weather"]["results"] == {"city": "Paris", "sky": "sunny"} and spans["get_time"]["complete"]
    assert spans["get_weather"]["arguments"][0]["arguments"] == {"city": "Paris"}
    agent_spans = [e for e in of_type(trace, "span") if e["content"]["kind"] == "agent"]
    assert agent_spans and all(parent_of(trace, e) for e in of_type(trace, "user_message"))
    assert Decimal(str(summary["costUsd"])) == 2 * mini_cost(120, 12, cached=100) and summary["costComplete"]


def test_openai_agents_sdk_through_openinference(otlp_server, fake_upstream):
    run_agent("openai_agents_sdk", otlp_server, fake_upstream)
    (summary,) = [t for t in traces_of(otlp_server, "weather-agent") if t["toolCalls"] == 1]
    trace = detail(otlp_server, summary["traceId"])
    assert_ordered_by_start(trace)
    answers = of_type(trace, "llm_response")
    assert [a["metadata"]["usage"] for a in answers] == [
        {"promptTokens": 50, "completionTokens": 5, "totalTokens": 55, "cacheReadTokens": 10, "reasoningTokens": 2}] * 2
    assert answers[0]["content"]["toolCalls"][0]["function"]["name"] == "get_weather"
    assert answers[1]["content"]["content"] == "Hello world"
    assert of_type(trace, "llm_thinking")[0]["content"]["thinking"] == "Thought."
    (tool,) = trace["spans"]
    assert tool["results"] == {"city": "Paris", "sky": "sunny"} and tool["arguments"][0]["arguments"] == {"city": "Paris"}
    assert parent_of(trace, of_type(trace, "tool_call_request")[0])["eventType"] == "span"
    assert Decimal(str(summary["costUsd"])) == 2 * mini_cost(50, 5, cached=10)


START = 1_764_000_000_000_000_000


def otlp_json(trace_id: str, spans: list[dict], service: str = "json-service") -> bytes:
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": service}}]}, "scopeSpans": [{"scope": {"name": "hand"},
                                                                                      "spans": spans}]}]}).encode()


def hand_span(trace_id: str, span_id: str, name: str, start: int, parent: str = "", **attributes) -> dict:
    values = [{"key": k.replace("__", "."), "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
              for k, v in attributes.items()]
    return {"traceId": trace_id, "spanId": span_id, "parentSpanId": parent, "name": name, "kind": 1,
            "startTimeUnixNano": str(START + start), "endTimeUnixNano": str(START + start + 5_000_000),
            "attributes": values}


def post(server, body: bytes, content_type: str = "application/json", **headers) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/traces", content=body, headers={"content-type": content_type, **headers})


def test_hand_built_json_gzipped_children_first_and_retried(otlp_server):
    trace_id = uuid.uuid4().hex
    llm = hand_span(trace_id, "00000000000000c1", "chat", 1_000_000, parent="00000000000000a1",
                    gen_ai__operation__name="chat", gen_ai__provider__name="anthropic",
                    gen_ai__request__model="claude-3-5-haiku-20241022", gen_ai__usage__input_tokens=20,
                    gen_ai__usage__output_tokens=5, gen_ai__usage__cache_read__input_tokens=300,
                    gen_ai__usage__cache_creation__input_tokens=40)
    root = hand_span(trace_id, "00000000000000a1", "invoke_agent", 0, gen_ai__operation__name="invoke_agent",
                     gen_ai__agent__name="json-agent")
    # The child comes first, in its own request, as a batch exporter sends spans by end time.
    first = post(otlp_server, gzip.compress(otlp_json(trace_id, [llm])), **{"content-encoding": "gzip"})
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    assert first.json() == {}
    assert post(otlp_server, otlp_json(trace_id, [root])).status_code == 200
    assert post(otlp_server, otlp_json(trace_id, [root, llm])).status_code == 200  # an exporter's retry
    trace = detail(otlp_server, trace_id)
    assert [e["eventType"] for e in trace["events"]] == ["span", "user_message", "llm_response"]
    agent, question, answer = trace["events"]
    assert question["parentStepId"] == agent["stepId"] and answer["parentStepId"] == question["stepId"]
    assert answer["metadata"]["usage"] == {"promptTokens": 20, "completionTokens": 5, "cacheReadTokens": 300,
                                           "cacheCreationTokens": 40, "totalTokens": 365}
    # Anthropic's cache reads and writes are priced on top of its input tokens.
    expected = (20 * Decimal("0.8") + 300 * Decimal("0.08") + 40 * Decimal("1") + 5 * Decimal("4")) / 1_000_000
    assert Decimal(str(trace["costUsd"])) == expected
    assert trace["eventCount"] == 3 and trace["usage"]["totalTokens"] == 365


def test_protobuf_export_is_answered_in_protobuf_and_names_rejected_spans(otlp_server):
    trace_id = uuid.uuid4().hex
    good = hand_span(trace_id, "00000000000000d1", "work", 0)
    bad = hand_span(trace_id, "00000000000000d2", "bad", 10, gen_ai__operation__name="chat",
                    gen_ai__usage__input_tokens=-5)
    request = decode.parse_request(otlp_json(trace_id, [good, bad]), decode.JSON)
    answer = post(otlp_server, request.SerializeToString(), "application/x-protobuf")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(answer.content)
    assert response.partial_success.rejected_spans == 1
    assert "00000000000000d2" in response.partial_success.error_message
    assert "metadata.usage.promptTokens" in response.partial_success.error_message
    assert [e["content"]["name"] for e in detail(otlp_server, trace_id)["events"]] == ["work"]


def test_bad_exports_are_refused_clearly_and_nothing_is_stored(otlp_server):
    trace_id = uuid.uuid4().hex
    body = otlp_json(trace_id, [hand_span(trace_id, "00000000000000e1", "x", 0),
                                hand_span(trace_id, "", "no id", 0)])
    no_id = post(otlp_server, body)
    assert no_id.status_code == 400
    assert no_id.json()["details"][0]["field"] == "resourceSpans.0.scopeSpans.0.spans.1.spanId"
    proto = decode.parse_request(otlp_json(trace_id, [hand_span(trace_id, "00000000000000e1", "x", 0)]), decode.JSON)
    truncated = post(otlp_server, proto.SerializeToString()[:-9], "application/x-protobuf")
    assert truncated.status_code == 400 and truncated.headers["content-type"] == "application/x-protobuf"
    assert "Malformed protobuf" in status_pb2.Status.FromString(truncated.content).message
    wrong_type = post(otlp_server, body, "text/plain")
    assert wrong_type.status_code == 415 and wrong_type.json()["details"][0]["field"] == "Content-Type"
    too_big = post(otlp_server, b"{" + b" " * 300_000 + b"}")
    assert too_big.status_code == 413 and "WHYOPS_MAX_BODY_BYTES" in too_big.json()["error"]
    bomb = post(otlp_server, gzip.compress(b" " * 300_000), **{"content-encoding": "gzip"})
    assert bomb.status_code == 413
    assert post(otlp_server, b'{"resourceSpans": 3}').status_code == 400
    assert httpx.get(f"{otlp_server.api}/traces/{trace_id}").status_code == 404


def test_large_exports_sent_together_are_stored_whole_whichever_process_decodes_them(otlp_server):
    """A large export that comes while the writer is busy is decoded, mapped and validated by the
    server (otlp/views.py ``_prepared``), others by the writer: either way each span is stored once,
    under its parent, with its usage, and a bad one is refused as the writer refuses it."""
    trace_id, root = uuid.uuid4().hex, "00000000000000a1"
    question = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Where is my order? " * 20}]}])

    def llm(n: int) -> dict:
        return hand_span(trace_id, f"{0x100 + n:016x}", "chat gpt-4o-mini", 1_000_000 * (n + 1), parent=root,
                         gen_ai__operation__name="chat", gen_ai__provider__name="openai",
                         gen_ai__request__model="gpt-4o-mini", gen_ai__usage__input_tokens=100 + n,
                         gen_ai__usage__output_tokens=10, gen_ai__input__messages=question)

    bodies = [decode.parse_request(otlp_json(trace_id, [llm(b * 40 + i) for i in range(40)]), decode.JSON)
              .SerializeToString() for b in range(8)]
    assert all(len(body) >= views.PREPARED_HERE.start for body in bodies)
    truncated = bodies[0][:-9]
    with ThreadPoolExecutor(len(bodies) + 1) as pool:
        answers = list(pool.map(lambda body: post(otlp_server, body, "application/x-protobuf"), [*bodies, truncated]))
    *stored, refused = answers
    assert [answer.status_code for answer in stored] == [200] * len(bodies)
    assert refused.status_code == 400 and refused.headers["content-type"] == "application/x-protobuf"
    assert "Malformed protobuf" in status_pb2.Status.FromString(refused.content).message
    assert post(otlp_server, otlp_json(trace_id, [hand_span(trace_id, root, "invoke_agent", 0,
                                                            gen_ai__operation__name="invoke_agent")])).status_code == 200
    trace = detail(otlp_server, trace_id)
    agent, *events = trace["events"]
    questions = of_type(trace, "user_message")
    assert agent["eventType"] == "span" and len(events) == 2 * 320 and len(questions) == 320
    assert {q["parentStepId"] for q in questions} == {agent["stepId"]}
    assert trace["usage"]["promptTokens"] == sum(100 + n for n in range(320)) and trace["llmCalls"] == 320


def test_the_api_key_applies(fake_upstream, tmp_path):
    with run_server(tmp_path, env={"WHYOPS_API_KEY": "secret"}) as keyed:
        trace_id = uuid.uuid4().hex
        body = otlp_json(trace_id, [hand_span(trace_id, "00000000000000f1", "x", 0)])
        assert post(keyed, body).status_code == 401
        assert post(keyed, body, authorization="Bearer secret").status_code == 200
        assert httpx.get(f"{keyed.api}/traces/{trace_id}").status_code == 401  # reading needs it too
        stored = httpx.get(f"{keyed.api}/traces/{trace_id}", headers={"Authorization": "Bearer secret"})
        assert stored.json()["eventCount"] == 1


async def test_an_exported_span_reaches_the_open_trace_page_live(otlp_server):
    from .test_live_server import listen, next_message

    trace_id = uuid.uuid4().hex
    first = hand_span(trace_id, "00000000000000a1", "warm-up", 0)
    async with httpx.AsyncClient() as client:
        await client.post(f"{otlp_server.url}/v1/traces", content=otlp_json(trace_id, [first]),
                          headers={"content-type": "application/json"})
        trace_ws = await listen(otlp_server, f"/ws/traces/{trace_id}")
        try:
            failing = hand_span(trace_id, "00000000000000a2", "lookup", 1_000_000, gen_ai__operation__name="execute_tool",
                                gen_ai__tool__name="lookup")
            failing["status"] = {"code": 2, "message": "lookup timed out"}
            await client.post(f"{otlp_server.url}/v1/traces", content=otlp_json(trace_id, [failing]),
                              headers={"content-type": "application/json"})
            kinds = [(await next_message(trace_ws, "event.new"))["event"]["eventType"] for _ in range(3)]
        finally:
            await trace_ws.close()
    assert kinds == ["tool_call_request", "tool_call_response", "error"]

"""A conversation id that comes on a late span of an OTel trace regroups the spans stored before it.

Exporters batch spans by end time, so the root span, which is where instrumentations put
``gen_ai.conversation.id`` / ``session.id``, is often exported last: the spans before it were stored
under the OTel trace id. Once the id comes they must all be in the conversation's trace, as if it had
come first: the same events, tree, totals, cost and flags, and live pages told.
"""

import json
import uuid

import httpx
import pytest
from selenium.webdriver.support.ui import WebDriverWait

from .browser import chromium, needs_chromium, wait_ready
from .servers import run_server
from .test_live_browser import live
from .test_live_server import listen, next_message
from .test_otlp_export import hand_span, otlp_json

ANSWER = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Order 7 has shipped."}],
                      "finish_reason": "stop"}])


@pytest.fixture(scope="module")
def otlp_server(tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("whyops-otlp-conversations")) as running:
        yield running


def run_spans(otel_trace: str, conversation: str) -> dict[str, dict]:
    """One agent run: a root agent span naming the conversation, a failing tool call, then three LLM
    calls giving the same answer (a repeated-answer flag)."""
    def llm(span_id: str, start: int) -> dict:
        return hand_span(otel_trace, span_id, "chat gpt-4o-mini", start, parent="00000000000000a1",
                         gen_ai__operation__name="chat", gen_ai__provider__name="openai",
                         gen_ai__request__model="gpt-4o-mini", gen_ai__usage__input_tokens=100,
                         gen_ai__usage__output_tokens=10, gen_ai__usage__cache_read__input_tokens=50,
                         gen_ai__output__messages=ANSWER)

    tool = hand_span(otel_trace, "00000000000000b1", "execute_tool lookup", 1_000_000, parent="00000000000000a1",
                     gen_ai__operation__name="execute_tool", gen_ai__tool__name="lookup")
    tool["status"] = {"code": 2, "message": "lookup timed out"}
    root = hand_span(otel_trace, "00000000000000a1", "invoke_agent", 0, gen_ai__operation__name="invoke_agent",
                     gen_ai__agent__name="conversation-agent", gen_ai__conversation__id=conversation)
    root["endTimeUnixNano"] = str(int(root["startTimeUnixNano"]) + 100_000_000)
    return {"tool": tool, "root": root, **{name: llm(f"00000000000000c{n}", n * 10_000_000)
                                           for n, name in enumerate(("first", "second", "third"), 1)}}


def export(server, otel_trace: str, spans: list[dict]) -> None:
    answer = httpx.post(f"{server.url}/v1/traces", content=otlp_json(otel_trace, spans),
                        headers={"content-type": "application/json"})
    assert answer.status_code == 200 and answer.json() == {}, answer.text


def shown(server, trace_id: str) -> tuple[dict, list]:
    trace = httpx.get(f"{server.api}/traces/{trace_id}").json()
    summary = {key: trace[key] for key in ("eventCount", "errorCount", "llmCalls", "toolCalls", "tokens", "usage",
                                           "costUsd", "models", "flags")}
    events = [(e["eventType"], e["stepId"], e["parentStepId"], e["content"]) for e in trace["events"]]
    return summary, events


async def test_spans_stored_before_a_late_conversation_id_move_into_its_trace(otlp_server):
    early, late = uuid.uuid4().hex, uuid.uuid4().hex
    said_first, said_last = f"conversation-{uuid.uuid4().hex}", f"conversation-{uuid.uuid4().hex}"
    reference = run_spans(early, said_first)
    export(otlp_server, early, list(reference.values()))

    spans = run_spans(late, said_last)
    export(otlp_server, late, [spans["tool"]])  # each batch by end time: the root, which names it, ends last
    export(otlp_server, late, [spans["first"], spans["second"]])
    assert httpx.get(f"{otlp_server.api}/traces/{late}").json()["eventCount"] == 7
    list_ws = await listen(otlp_server, "/ws/traces/")
    page_ws = await listen(otlp_server, f"/ws/traces/{late}")
    try:
        export(otlp_server, late, [spans["root"]])
        assert (await next_message(page_ws, "trace.deleted", timeout=5)) == {
            "type": "trace.deleted", "traceId": late, "movedTo": said_last}
        assert (await next_message(list_ws, "trace.deleted", timeout=5))["traceId"] == late
        update = await next_message(list_ws, "trace.update", timeout=5)
        assert update["trace"]["traceId"] == said_last and update["trace"]["eventCount"] == 8
    finally:
        await list_ws.close()
        await page_ws.close()
    export(otlp_server, late, [spans["third"]])  # a span after it, without the id, joins it too

    assert httpx.get(f"{otlp_server.api}/traces/{late}").status_code == 404
    regrouped, expected = shown(otlp_server, said_last), shown(otlp_server, said_first)
    assert regrouped == expected
    summary, events = regrouped
    assert [kind for kind, *_ in events] == ["span", "tool_call_request", "tool_call_response", "error",
                                             *["user_message", "llm_response"] * 3]
    root_step = events[0][1]
    assert [parent for kind, _, parent, _ in events if kind in ("user_message", "tool_call_request")] == [root_step] * 4
    assert summary["eventCount"] == 10 and summary["llmCalls"] == 3 and summary["errorCount"] == 1
    assert summary["tokens"]["input"] == 150 and summary["tokens"]["cacheRead"] == 150
    assert "repeated_answer" in [flag["kind"] if isinstance(flag, dict) else flag for flag in summary["flags"]]
    listed = httpx.get(f"{otlp_server.api}/traces", params={"agent": "conversation-agent"}).json()["traces"]
    assert {t["traceId"] for t in listed} >= {said_first, said_last} and late not in {t["traceId"] for t in listed}
    found = httpx.get(f"{otlp_server.api}/traces", params={"q": "lookup timed out"}).json()["traces"]
    assert late not in {t["traceId"] for t in found} and said_last in {t["traceId"] for t in found}


@needs_chromium
def test_an_open_page_of_the_spans_follows_them_into_the_conversations_trace(otlp_server):
    late, conversation = uuid.uuid4().hex, f"conversation-{uuid.uuid4().hex}"
    spans = run_spans(late, conversation)
    export(otlp_server, late, [spans["tool"]])
    with chromium() as driver:
        driver.get(f"{otlp_server.url}/traces/{late}")
        wait_ready(driver)
        live(driver)
        export(otlp_server, late, [spans["root"]])
        WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith(f"/traces/{conversation}"))
        wait_ready(driver)
        assert driver.execute_script("return document.getElementById('trace-id').textContent") == conversation

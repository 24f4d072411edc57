import pytest

from tests.storing import record_events
from whyops_local.domain.schemas import EventIn
from whyops_local.storage.rows import register_agent

pytestmark = pytest.mark.django_db


def store(*events):
    return record_events([EventIn.model_validate(e) for e in events])


def ev(trace, event_type="user_message", agent="support", **fields):
    return {"eventType": event_type, "traceId": trace, "agentName": agent, **fields}


@pytest.fixture
def three_traces():
    store(ev("t-old", timestamp="2026-01-01T00:00:00Z", externalUserId="u1",
             content={"messages": [{"role": "user", "content": "refund my ORDER please"}]}))
    store(ev("t-err", "error", agent="billing", timestamp="2026-01-02T00:00:00Z", content={"message": "boom"}))
    store(ev("t-new", "llm_response", timestamp="2026-01-03T00:00:00Z",
             metadata={"model": "gpt-4o-mini", "provider": "openai", "usage": {"promptTokens": 10}}))


def ids(response):
    assert response.status_code == 200, response.content
    return [t["traceId"] for t in response.json()["traces"]]


def test_traces_are_listed_newest_activity_first(client, three_traces):
    assert ids(client.get("/api/traces")) == ["t-new", "t-err", "t-old"]


def test_a_late_event_moves_its_trace_to_the_top(client, three_traces):
    store(ev("t-old", timestamp="2026-01-04T00:00:00Z"))
    assert ids(client.get("/api/traces"))[0] == "t-old"


@pytest.mark.parametrize(("query", "expected"), [
    ({"agent": "billing"}, ["t-err"]),
    ({"user": "u1"}, ["t-old"]),
    ({"model": "gpt-4o-mini"}, ["t-new"]),
    ({"has_error": "true"}, ["t-err"]),
    ({"has_error": "false"}, ["t-new", "t-old"]),
    ({"q": "order"}, ["t-old"]),
    ({"q": "t-ERR"}, ["t-err"]),
    ({"agent": "support", "q": "boom"}, []),
])
def test_the_list_filters(client, three_traces, query, expected):
    assert ids(client.get("/api/traces", query)) == expected


def test_paging_by_cursor_visits_every_trace_once(client):
    for i in range(7):
        store(ev(f"t{i}", timestamp="2026-01-01T00:00:00Z"))  # equal times: the id breaks the tie
    seen, cursor = [], ""
    while True:
        page = client.get("/api/traces", {"limit": 3, "cursor": cursor}).json()
        seen += [t["traceId"] for t in page["traces"]]
        if not page["next"]:
            break
        cursor = page["next"]
    assert seen == [f"t{i}" for i in reversed(range(7))]


def test_a_bad_cursor_is_a_400_naming_it(client):
    response = client.get("/api/traces", {"cursor": "garbage"})
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "cursor"


def test_a_trace_summary_has_the_protocol_fields(client, three_traces):
    summary = client.get("/api/traces").json()["traces"][0]
    assert set(summary) >= {"traceId", "agentName", "externalUserId", "startedAt", "lastEventAt", "durationMs",
                            "eventCount", "errorCount", "llmCalls", "toolCalls", "models", "usage", "costUsd",
                            "costComplete"}
    assert summary["usage"] == {"promptTokens": 10, "completionTokens": 0, "cacheReadTokens": 0,
                                "cacheCreationTokens": 0, "totalTokens": 10}


def test_a_trace_reads_back_in_step_order_with_its_tool_spans(client):
    store(ev("t", stepId=3), ev("t", stepId=1),
          ev("t", "tool_call_request", spanId="s", timestamp="2026-01-01T00:00:00Z", metadata={"tool": "search"},
             content={"toolCalls": [{"name": "search", "arguments": {"q": "x"}}]}),
          ev("t", "tool_call_response", spanId="s", timestamp="2026-01-01T00:00:00.250Z", metadata={"tool": "search"},
             content={"toolCalls": [], "toolResults": {"hits": 2}}))
    body = client.get("/api/traces/t").json()
    assert [e["stepId"] for e in body["events"]] == [1, 3, 4, 5]
    assert set(body["events"][0]) >= {"id", "eventType", "traceId", "stepId", "parentStepId", "spanId", "timestamp",
                                      "externalUserId", "content", "metadata", "source", "costUsd"}
    (span,) = body["spans"]
    assert (span["tool"], span["latencyMs"], span["results"], span["complete"]) == ("search", 250.0, {"hits": 2}, True)


def test_trace_ids_with_slashes_and_unknown_ids(client):
    store(ev("org/session 1"))
    assert client.get("/api/traces/org/session 1").json()["traceId"] == "org/session 1"
    missing = client.get("/api/traces/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


def test_agents_list_and_detail_with_versions(client):
    register_agent("support", {"systemPrompt": "v1", "tools": []})
    register_agent("support", {"systemPrompt": "v2", "tools": [{"name": "search"}]})
    store(ev("t"))
    (agent,) = client.get("/api/agents").json()["agents"]
    assert agent["name"] == "support" and agent["latestVersion"]["version"] == 2 and agent["traceCount"] == 1
    detail = client.get("/api/agents/support").json()
    assert [v["systemPrompt"] for v in detail["versions"]] == ["v2", "v1"]
    assert detail["versions"][0]["tools"] == [{"name": "search"}]
    assert client.get("/api/agents/ghost").status_code == 404


def test_health_and_openapi_docs(client):
    assert client.get("/api/health").json()["status"] == "ok"
    schema = client.get("/api/openapi.json").json()
    assert {"/api/events/ingest", "/api/entities/init", "/api/traces"} <= set(schema["paths"])
    assert client.get("/api/docs").status_code == 200

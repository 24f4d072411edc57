"""Every page and filter through the Django test client: content, escaping, costs, paging, empty state."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from whyops_local.domain import pricing
from whyops_local.models import Agent, Trace
from whyops_local.storage.rows import register_agent

from .pages_fixtures import SUPPORT_AGENT, send, support_trace

pytestmark = pytest.mark.django_db

XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> [click](javascript:window.__pwned=3)'


def graph_of(response):
    html = response.content.decode()
    opening = '<script id="trace-graph" type="application/json">'
    start = html.index(opening) + len(opening)
    return json.loads(html[start:html.index("</script>", start)])


def test_an_empty_server_tells_how_to_point_clients_at_it(client):
    html = client.get("/").content.decode()
    assert 'id="empty-state"' in html
    assert 'analyse_base_url="http://testserver/api"' in html
    assert 'proxy_base_url="http://testserver/proxy"' in html
    assert 'base_url="http://testserver/proxy/v1"' in html and 'base_url="http://testserver/proxy",' in html
    assert "<code>whyops-local demo</code>" in html


def test_the_trace_list_shows_columns_and_links(client):
    support_trace()
    html = client.get("/").content.decode()
    assert "empty-state" not in html
    for text in ('href="/traces/session-123"', 'href="/agents/customer-support-agent/"', 'href="/users/user_12345/"',
                 ">ok<", "110"):  # tokens: 52 + 58
        assert text in html
    assert pricing.PRICE_DATA_VERSION in html


@pytest.mark.parametrize("query, expected", [
    ("agent=customer-support-agent", {"apple", "banana"}),
    ("agent=other-agent", {"cherry"}),
    ("user=u1", {"apple"}),
    ("model=gpt-4o-mini", {"banana"}),
    ("has_error=yes", {"cherry"}),
    ("has_error=no", {"apple", "banana"}),
    ("q=needle", {"banana"}),
    ("q=cherr", {"cherry"}),  # a trace id matches too
    ("q=boom", {"cherry"}),
    ("agent=customer-support-agent&has_error=yes", set()),
])
def test_each_filter_narrows_the_list(client, query, expected):
    send("apple", "user_message", {"messages": [{"role": "user", "content": "hello"}]}, externalUserId="u1")
    send("banana", "llm_response", {"content": "a needle in here"}, {"model": "gpt-4o-mini", "provider": "openai"})
    send("cherry", "error", {"message": "boom"}, agent="other-agent")
    response = client.get(f"/?{query}")
    assert response.status_code == 200
    shown = {t.trace_id for t in response.context["traces"]}
    assert shown == expected
    if not expected:
        assert 'id="no-match"' in response.content.decode()


def test_keyset_paging_walks_all_traces_newest_first(client):
    agent = Agent.objects.create(name="bulk")
    now = timezone.now()
    Trace.objects.bulk_create([Trace(trace_id=f"t{i:03}", agent=agent, started_at=now, last_event_at=now - timedelta(seconds=i))
                               for i in range(120)])
    seen, url = [], "/"
    while url:
        response = client.get(url)
        seen += [t.trace_id for t in response.context["traces"]]
        cursor = response.context["next_cursor"]
        url = f"/?cursor={cursor}" if cursor else None
    assert seen == [f"t{i:03}" for i in range(120)]
    assert client.get("/?cursor=garbage").context["bad_cursor"] is True


def test_the_trace_page_has_header_totals_graph_and_span_tree(client):
    support_trace()
    response = client.get("/traces/session-123")
    html = response.content.decode()
    assert response.status_code == 200
    for text in ("customer-support-agent", "v1", "user_12345", "Cost by model", "openai/gpt-4o-mini",
                 'data-total="input">82<', 'data-total="output">28<'):
        assert text in html, text
    graph = graph_of(response)
    assert [n["kind"] for n in graph["nodes"]] == ["user", "thinking", "llm", "tool", "llm"]
    assert graph["edges"] == [["1", "2"], ["2", "3"], ["3", "4"], ["4", "6"]]
    assert [(row["id"], row["depth"]) for row in graph["tree"]["rows"]] == [
        ("turn-0", 0), ("1", 1), ("2", 1), ("3", 1), ("4", 2), ("6", 1)]
    assert graph["selected"] == "1" and "Where is order 123?" in html  # first step's panel is rendered


def test_step_in_the_url_selects_the_panel_and_the_fragment_serves_it(client):
    support_trace()
    html = client.get("/traces/session-123?step=4").content.decode()
    assert "Tool span" in html and "&quot;orderId&quot;: &quot;123&quot;" in html
    assert "&quot;status&quot;: &quot;shipped&quot;" in html
    assert graph_of(client.get("/traces/session-123?step=5"))["selected"] == "4"  # the span's response step
    fragment = client.get("/traces/session-123?step=5&partial=panel").content.decode()
    assert fragment.lstrip().startswith("<article") and "Tool span" in fragment and "<html" not in fragment
    assert client.get("/traces/session-123?step=99&partial=panel").status_code == 404
    assert client.get("/traces/session-123?step=bogus&partial=panel").status_code == 404


def test_the_thinking_panel_says_whether_a_signature_is_present(client):
    support_trace()
    send("session-123", "llm_thinking", {"type": "thinking", "thinking": "unsigned thought"})
    assert "signature present" in client.get("/traces/session-123?step=2&partial=panel").content.decode()
    assert "signature absent" in client.get("/traces/session-123?step=7&partial=panel").content.decode()


def test_llm_panel_shows_answer_usage_cost_with_its_source_and_latency(client):
    support_trace()
    html = client.get("/traces/session-123?step=6&partial=panel").content.decode()
    assert "Your order has shipped." in html and "390 ms" in html and "finish: stop" in html
    assert 'title="genai-prices' in html and "$0." in html


def test_an_unknown_price_says_so_and_marks_the_trace_sum_incomplete(client):
    support_trace()
    send("session-123", "llm_response", {"content": "hi"}, {"model": "my-local-model", "provider": "local",
                                                             "usage": {"promptTokens": 5, "completionTokens": 1}})
    html = client.get("/traces/session-123").content.decode()
    assert "price unknown" in html  # the model's row in the breakdown
    assert "Incomplete: some calls have no known price" in html
    panel = client.get("/traces/session-123?step=7&partial=panel").content.decode()
    assert "price unknown" in panel and "$0.00" not in panel


def test_untrusted_content_is_escaped_everywhere(client):
    register_agent(XSS, {"systemPrompt": XSS, "tools": [{"name": XSS, "description": XSS}]})
    send(XSS, "user_message", {"messages": [{"role": XSS, "content": XSS}]}, agent=XSS, externalUserId=XSS)
    send(XSS, "llm_response", {"content": XSS, "toolCalls": [{"function": {"name": XSS, "arguments": XSS}}]},
         {"model": XSS, "provider": "openai"}, agent=XSS)
    from django.urls import reverse
    pages = ["/", "/?q=script", reverse("trace", args=[XSS]), reverse("trace", args=[XSS]) + "?step=2",
             reverse("trace", args=[XSS]) + "?step=2&partial=panel", "/agents/", reverse("agent", args=[XSS]),
             reverse("user", args=[XSS])]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "<script>window.__pwned" not in html and "<img src=x" not in html, url
    graph_json = client.get(reverse("trace", args=[XSS])).content.decode()
    assert "\\u003Cscript\\u003E" in graph_json  # json_script escapes what the graph JS reads


def test_large_content_is_truncated_with_show_all_and_images_are_images(client):
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    big = "word " * 2000
    send("big", "user_message", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": big},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 50000}},
    ]}]})
    html = client.get("/traces/big?step=1&partial=panel").content.decode()
    assert "show all (10000 characters)" in html
    assert f'src="data:image/png;base64,{png}"' in html
    assert "37.5\xa0KB" in html or "36.6\xa0KB" in html  # the second image, by size
    assert "A" * 1000 not in html.split("Raw JSON")[1]  # raw JSON elides base64


def test_agents_pages_show_versions_tools_usage_and_a_diff(client):
    support_trace()
    register_agent("customer-support-agent", {**SUPPORT_AGENT, "systemPrompt": "You are a terse support assistant."})
    html = client.get("/agents/").content.decode()
    assert 'href="/agents/customer-support-agent/"' in html and "v2" in html
    response = client.get("/agents/customer-support-agent/")
    html = response.content.decode()
    assert "search_orders" in html and "Look up order state by ID" in html and "&quot;orderId&quot;" in html
    assert '<span class="d-del">-You are a precise customer support assistant.</span>' in html
    assert '<span class="d-add">+You are a terse support assistant.</span>' in html
    v1 = next(r for r in response.context["rows"] if r["version"].seq == 1)
    assert v1["traces"] == 1 and v1["tokens"] == 110 and v1["cost"] > 0
    same = client.get("/agents/customer-support-agent/?a=1&b=1").content.decode()
    assert "Same version" in same
    assert client.get("/agents/nobody/").status_code == 404


def test_the_user_page_sums_that_users_traces(client):
    support_trace("t1", user="alice")
    support_trace("t2", user="alice")
    support_trace("t3", user="bob")
    send("t2", "error", {"message": "boom"})
    response = client.get("/users/alice/")
    assert {t.trace_id for t in response.context["traces"]} == {"t1", "t2"}
    assert response.context["totals"]["errors"] == 1 and response.context["totals"]["tokens"] == 220
    assert client.get("/users/nobody/").status_code == 404


def test_static_files_are_served_with_debug_off(client):
    for path in ("/static/css/base.css", "/static/js/pages/trace.js", "/static/js/components/graph.js"):
        assert client.get(path).status_code == 200, path


def test_a_proxied_call_shows_its_raw_exchange(client):
    from tests.storing import record_events
    from whyops_local.domain.schemas import EventIn
    from whyops_local.models import Event, Exchange

    exchange = Exchange.objects.create(
        provider="openai", method="POST", path="/v1/chat/completions", status=200, started_at=timezone.now(),
        request_headers={"content-type": "application/json"}, request_data=b'{"model": "gpt-4o-mini", "messages": []}',
        response_data=b'{"id": "chatcmpl-1", "choices": [{"message": {"content": "<b>hi</b>"}}]}', ttfb_ms=120, total_ms=450)
    record_events([EventIn.model_validate({
        "eventType": "llm_response", "traceId": "proxied", "agentName": "default", "content": {"content": "<b>hi</b>"},
        "metadata": {"model": "gpt-4o-mini", "provider": "openai", "latencyMs": 450}})],
        source=Event.SOURCE_PROXY, exchange=exchange)
    html = client.get("/traces/proxied?step=1&partial=panel").content.decode()
    assert "Raw exchange · POST /v1/chat/completions → 200" in html
    assert "first byte 120 ms" in html and "&quot;chatcmpl-1&quot;" in html and "<b>hi</b>" not in html


def test_embedding_and_error_steps_have_their_own_panels(client):
    send("emb", "embedding_request", {"input": ["first text", "second text"]})
    send("emb", "embedding_response", {"object": "list", "embeddingCount": 2, "firstEmbeddingDimensions": 1536},
         {"model": "text-embedding-3-small", "provider": "openai", "usage": {"totalTokens": 8}, "latencyMs": 40})
    send("emb", "error", {"message": "rate limited", "status": 429, "stack": "Traceback ..."})
    request = client.get("/traces/emb?step=1&partial=panel").content.decode()
    assert "Inputs (2)" in request and "second text" in request
    response = client.get("/traces/emb?step=2&partial=panel").content.decode()
    assert "text-embedding-3-small" in response and "&quot;embeddingCount&quot;: 2" in response and "40 ms" in response
    error = client.get("/traces/emb?step=3&partial=panel").content.decode()
    assert "status 429" in error and "rate limited" in error and "Traceback ..." in error
    graph = graph_of(client.get("/traces/emb"))
    assert [n["kind"] for n in graph["nodes"]] == ["embedding", "embedding", "error"]


def test_the_graph_json_is_served_for_live_redraws(client):
    support_trace()
    data = client.get("/traces/session-123?partial=graph").json()
    assert [n["id"] for n in data["nodes"]] == ["1", "2", "3", "4", "6"]
    assert data["summary"]["eventCount"] == 6 and len(data["tree"]["rows"]) == 6


def test_pages_forbid_inline_and_foreign_scripts(client):
    support_trace()
    for url in ("/", "/traces/session-123", "/agents/", "/agents/customer-support-agent/", "/users/user_12345/"):
        policy = client.get(url).headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "object-src 'none'" in policy, url


def test_a_legacy_tool_call_event_and_an_open_span_still_render(client):
    send("legacy", "tool_call", {"name": "lookup", "arguments": {"id": 1}}, spanId="old")
    send("legacy", "tool_call_request", {"toolCalls": [{"name": "slow", "arguments": {}}]}, {"tool": "slow"}, spanId="new")
    legacy = client.get("/traces/legacy?step=1&partial=panel")
    assert legacy.status_code == 200 and "&quot;lookup&quot;" in legacy.content.decode()
    open_span = client.get("/traces/legacy?step=2&partial=panel").content.decode()
    assert "no response yet" in open_span
    nodes = graph_of(client.get("/traces/legacy"))["nodes"]
    assert [(n["kind"], n["open"]) for n in nodes] == [("tool", False), ("tool", True)]


ODD_CONTENT = [
    None, "plain string", 42, [1, "two", None], {"messages": "not a list"}, {"messages": [None, 5, {"role": None}]},
    {"content": [{"type": "text", "text": "hi"}, {"type": "thinking", "thinking": "t", "signature": "s"},
                 {"type": "redacted_thinking", "data": "xx"}, {"type": "tool_use", "id": "1", "name": "f", "input": {}}]},
    {"toolCalls": "not a list", "toolResults": None}, {"toolCalls": [None, 3, {"function": "x"}]},
    {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                                               {"type": "image_url", "image_url": "data:image/gif;base64,R0lGOD=="},
                                               {"type": "tool_result", "tool_use_id": "1",
                                                "content": [{"type": "text", "text": "r"}]}]}]},
    {"type": "redacted_thinking", "data": "abc"}, {"input": "one string"}, {"message": None, "status": "x"},
]


@pytest.mark.parametrize("content", ODD_CONTENT)
def test_odd_content_of_every_event_type_renders(client, content):
    from whyops_local.domain.schemas import EVENT_TYPES, REQUIRED_METADATA

    for event_type in EVENT_TYPES:
        metadata = {key: "x" for key in REQUIRED_METADATA.get(event_type, ())}
        send("odd", event_type, content, metadata or None, spanId=f"span-{event_type}")
    response = client.get("/traces/odd")
    assert response.status_code == 200
    for node in graph_of(response)["nodes"]:
        panel = client.get(f"/traces/odd?step={node['id']}&partial=panel")
        assert panel.status_code == 200, (node, content)


def test_ids_with_slashes_and_odd_characters_have_working_links(client):
    from django.urls import reverse

    for trace_id in ("https://example.com//session/1", "a b?c#d%20e", "ünïcode/✓"):
        send(trace_id, "user_message", {"messages": []}, externalUserId=trace_id)
        url = reverse("trace", args=[trace_id])
        assert client.get(url).context["trace"].trace_id == trace_id
        assert client.get(reverse("user", args=[trace_id])).context["user_id"] == trace_id
        assert f'href="{url}"' in client.get("/").content.decode()


def test_events_of_an_agent_without_a_version_are_counted_apart(client):
    send("nover", "llm_response", {"content": "x"}, {"model": "gpt-4o-mini", "provider": "openai",
                                                     "usage": {"promptTokens": 10, "completionTokens": 2}}, agent="bare")
    response = client.get("/agents/bare/")
    assert response.status_code == 200
    assert response.context["unversioned"]["traces"] == 1 and "no version" in response.content.decode()

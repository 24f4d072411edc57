"""An OTLP trace through the Django view of /v1/traces, then on the pages like any other trace."""

import json

import pytest

from .test_otlp_export import hand_span, otlp_json
from .test_pages_views import graph_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_exported_trace_is_listed_searchable_and_drawn_with_its_span_tree(client):
    trace_id = "1" * 32
    agent = hand_span(trace_id, "00000000000000a1", "invoke_agent planner", 0, gen_ai__operation__name="invoke_agent",
                      gen_ai__agent__name="planner")
    chat = hand_span(trace_id, "00000000000000b1", "chat", 1_000_000, parent="00000000000000a1",
                     gen_ai__operation__name="chat", gen_ai__provider__name="openai", gen_ai__request__model="gpt-4o-mini",
                     gen_ai__usage__input_tokens=10, gen_ai__usage__output_tokens=2,
                     gen_ai__input__messages=json.dumps([{"role": "user", "parts": [
                         {"type": "text", "content": "plan a trip to Lisbon"}]}]))
    answer = client.post("/v1/traces", otlp_json(trace_id, [chat, agent]), content_type="application/json")
    assert answer.status_code == 200 and answer.json() == {}
    assert trace_id in client.get("/", {"q": "Lisbon"}).content.decode()
    graph = graph_of(client.get(f"/traces/{trace_id}"))
    span, question, reply = graph["nodes"]
    assert (span["kind"], span["label"], question["kind"], reply["kind"]) == ("span", "invoke_agent planner", "user", "llm")
    assert [span["id"], question["id"]] in graph["edges"] and [question["id"], reply["id"]] in graph["edges"]

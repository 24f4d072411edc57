"""Proxied calls and SDK events land on the version the user registered, not on one invented from the wire."""

import json
import uuid

import httpx
import openai
from whyops import WhyOps

from .proxy_fixtures import read_trace

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _tool(name: str) -> dict:
    return {"name": name, "description": f"{name} for a city", "inputSchema": json.dumps(SCHEMA),
            "outputSchema": json.dumps({"type": "object"})}


def _wire_tool(name: str) -> dict:
    # What an agent sends upstream: no output schema, its own schema formatting.
    return {"type": "function", "function": {"name": name, "parameters": SCHEMA}}


V2 = {"systemPrompt": "You check the weather.", "tools": [_tool("get_weather")]}
V3 = {"systemPrompt": "You check the weather and the time.", "tools": [_tool("get_weather"), _tool("get_time")],
      "description": "weather and time"}


def _register(proxied, agent: str, metadata: dict) -> dict:
    sdk = WhyOps(api_key="k", agent_name=agent, agent_metadata=metadata,
                 proxy_base_url=proxied.proxy, analyse_base_url=proxied.api)
    return sdk.init_agent_sync()


def _call(proxied, agent: str, trace_id: str, messages: list, tools: list | None = None) -> None:
    client = openai.OpenAI(base_url=f"{proxied.proxy}/v1", api_key="sk-x", max_retries=0,
                           default_headers={"X-Agent-Name": agent, "X-Trace-ID": trace_id})
    client.chat.completions.create(model="gpt-4o-mini", messages=messages, **({"tools": tools} if tools else {}))


def _versions(proxied, agent: str) -> dict[int, int]:
    answer = httpx.get(f"{proxied.api}/agents/{agent}").json()
    return {v["version"]: v["totals"]["traceCount"] for v in answer["versions"]}


def test_proxied_calls_land_on_the_registered_version_and_invent_none(proxied, fake):
    agent = f"weather-{uuid.uuid4().hex[:6]}"
    _register(proxied, agent, {"systemPrompt": "v1", "tools": []})
    _register(proxied, agent, V2)
    assert _register(proxied, agent, V3)["status"] == "created"
    system = {"role": "system", "content": V3["systemPrompt"]}
    user = {"role": "user", "content": "Paris?"}
    traces = [f"t-{uuid.uuid4().hex}" for _ in range(4)]
    _call(proxied, agent, traces[0], [system, user], [_wire_tool("get_weather"), _wire_tool("get_time")])
    _call(proxied, agent, traces[1], [system, user], [_wire_tool("get_time"), _wire_tool("get_weather")])
    _call(proxied, agent, traces[2], [system, user])  # the tools left out once: a final summary
    _call(proxied, agent, traces[3], [user])  # no system prompt, no tools
    for trace_id in traces:
        assert read_trace(proxied, trace_id, 2)["agentVersion"] == 3
    assert _versions(proxied, agent) == {3: 4, 2: 0, 1: 0}

    v2_trace = f"t-{uuid.uuid4().hex}"
    _call(proxied, agent, v2_trace, [{"role": "system", "content": V2["systemPrompt"]}, user], [_wire_tool("get_weather")])
    assert read_trace(proxied, v2_trace, 2)["agentVersion"] == 2  # an older registered version, matched too


def test_a_real_change_makes_a_new_version(proxied, fake):
    agent = f"weather-{uuid.uuid4().hex[:6]}"
    _register(proxied, agent, V3)
    system = {"role": "system", "content": V3["systemPrompt"]}
    removed, edited = f"t-{uuid.uuid4().hex}", f"t-{uuid.uuid4().hex}"
    _call(proxied, agent, removed, [system, {"role": "user", "content": "Paris?"}], [_wire_tool("get_weather")])
    assert read_trace(proxied, removed, 2)["agentVersion"] == 2
    _call(proxied, agent, edited, [{"role": "system", "content": "You check the weather. Be brief."},
                                   {"role": "user", "content": "Paris?"}],
          [_wire_tool("get_weather"), _wire_tool("get_time")])
    assert read_trace(proxied, edited, 2)["agentVersion"] == 3
    versions = httpx.get(f"{proxied.api}/agents/{agent}").json()["versions"]
    assert [[t["name"] for t in v["tools"]] for v in versions] == [["get_weather", "get_time"], ["get_weather"],
                                                                   ["get_weather", "get_time"]]


def test_sdk_events_saying_the_registered_prompt_and_tool_names_land_on_it(proxied):
    agent = f"weather-{uuid.uuid4().hex[:6]}"
    _register(proxied, agent, V3)
    _register(proxied, agent, V2)  # v2 now the latest
    sdk = WhyOps(api_key="k", agent_name=agent, agent_metadata=V2, proxy_base_url=proxied.proxy,
                 analyse_base_url=proxied.api)
    trace_id = f"t-{uuid.uuid4().hex}"
    # user_message metadata carrying v1's prompt and only its tools' names (thinner than registered)
    sdk.trace(trace_id).user_message_sync([{"role": "user", "content": "Paris?"}], metadata={
        "systemPrompt": V3["systemPrompt"], "tools": ["get_time", "get_weather"]})
    assert read_trace(proxied, trace_id, 1)["agentVersion"] == 1
    assert [v["version"] for v in httpx.get(f"{proxied.api}/agents/{agent}").json()["versions"]] == [2, 1]

"""Scripted agents for ``whyops-local demo``, driven through the server's real proxy and ingest API.

They speak the providers' and WhyOps's wire formats with httpx: an installed wheel has the runtime
dependencies only (no openai, anthropic or whyops package). The provider is the demo's fake one
(``FakeUpstream(agentic=True)``), which calls the offered tools until it is given their results.
"""

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

SUPPORT = {"name": "support-agent", "systemPrompt": "You are a precise customer support assistant. Use the tools "
                                                     "to look things up; never guess."}
RESEARCH = {"name": "research-agent", "systemPrompt": "You are a careful research assistant. Think before you "
                                                       "answer, and cite what the tools returned."}
USERS = ("alice@example.com", "bob@example.com")
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-5"
TOOLS = [
    {"name": "get_weather", "description": "Current weather in a city.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    {"name": "get_time", "description": "Local time in a time zone.",
     "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}},
]
OPENAI_TOOLS = [{"type": "function", "function": tool} for tool in TOOLS]
ANTHROPIC_TOOLS = [{"name": t["name"], "description": t["description"], "input_schema": t["parameters"]} for t in TOOLS]


def run_tool(name: str, arguments: dict[str, Any]) -> str:
    """What the demo's tools answer."""
    if name == "get_weather":
        return json.dumps({"city": arguments.get("city"), "temperatureC": 18, "conditions": "light rain"})
    return json.dumps({"tz": arguments.get("tz"), "time": "14:05"})


class Agent:
    """One agent's runs: its headers for the proxy, its registration and events for the ingest API."""

    def __init__(self, client: httpx.Client, profile: dict[str, str], tools: list[dict[str, Any]]) -> None:
        self.client, self.name, self.system = client, profile["name"], profile["systemPrompt"]
        self.tools = tools
        answer = client.post("/api/entities/init", json={"agentName": self.name, "metadata": {
            "systemPrompt": self.system,
            "tools": [{"name": t["name"], "description": t["description"], "inputSchema": json.dumps(t["parameters"])}
                      for t in tools]}})
        answer.raise_for_status()

    def headers(self, trace_id: str, user: str) -> dict[str, str]:
        return {"X-Agent-Name": self.name, "X-Trace-ID": trace_id, "X-External-User-Id": user}

    def post(self, path: str, body: dict[str, Any], trace_id: str, user: str, **headers: str) -> httpx.Response:
        return self.client.post(path, json=body, headers={**self.headers(trace_id, user), **headers})

    def ingest(self, events: list[dict[str, Any]]) -> None:
        self.client.post("/api/events/ingest", json=events).raise_for_status()


def _streamed_chat(answer: httpx.Response) -> dict[str, Any]:
    """The assistant message a streamed chat completion adds up to (tool calls merged by index)."""
    text, calls = "", {}
    for line in answer.text.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        for choice in json.loads(line[6:])["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for part in delta.get("tool_calls") or []:
                call = calls.setdefault(part["index"], {"id": part.get("id"), "type": "function",
                                                        "function": {"name": "", "arguments": ""}})
                call["function"]["name"] += part.get("function", {}).get("name") or ""
                call["function"]["arguments"] += part.get("function", {}).get("arguments") or ""
    return {"role": "assistant", "content": text or None, **({"tool_calls": list(calls.values())} if calls else {})}


def openai_tool_loop(agent: Agent, trace_id: str, user: str, question: str, stream: bool) -> None:
    """Chat completions until the model stops calling tools: each call's tool calls are run and sent back."""
    messages = [{"role": "system", "content": agent.system}, {"role": "user", "content": question}]
    for _ in range(4):
        body = {"model": OPENAI_MODEL, "messages": messages, "tools": OPENAI_TOOLS}
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        answer = agent.post("/proxy/v1/chat/completions", body, trace_id, user)
        answer.raise_for_status()
        message = _streamed_chat(answer) if stream else answer.json()["choices"][0]["message"]
        messages.append({key: value for key, value in message.items() if key in ("role", "content", "tool_calls")})
        if not message.get("tool_calls"):
            return
        messages += [{"role": "tool", "tool_call_id": call["id"],
                      "content": run_tool(call["function"]["name"], json.loads(call["function"]["arguments"]))}
                     for call in message["tool_calls"]]


def anthropic_run(agent: Agent, trace_id: str, user: str, question: str, thinking: bool = False,
                  cache: bool = False, fail_first: int | None = None, messages: list | None = None) -> list:
    """Messages until the model stops using tools; the conversation, which ``messages`` may have begun.
    ``fail_first``: the provider first answers that status (the agent retries); ``cache``: the system
    prompt is marked for the prompt cache."""
    system: Any = [{"type": "text", "text": agent.system, **({"cache_control": {"type": "ephemeral"}} if cache else {})}]
    messages = [*(messages or []), {"role": "user", "content": question}]
    while True:
        body = {"model": ANTHROPIC_MODEL, "max_tokens": 2048, "system": system, "messages": messages,
                "tools": ANTHROPIC_TOOLS}
        if thinking:
            body["thinking"] = {"type": "enabled", "budget_tokens": 1024}
        extra = {"x-fake-status": str(fail_first)} if fail_first else {}
        answer = agent.post("/proxy/v1/messages", body, trace_id, user, **extra, **{"anthropic-version": "2023-06-01"})
        if fail_first:
            fail_first = None  # and the agent tries again
            continue
        answer.raise_for_status()
        content = answer.json()["content"]
        messages.append({"role": "assistant", "content": content})
        uses = [block for block in content if block["type"] == "tool_use"]
        if not uses:
            return messages
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": use["id"], "content": run_tool(use["name"], use["input"])}
            for use in uses]})


def long_run(agent: Agent, trace_id: str, user: str, turns: int = 100) -> None:
    """A long research session sent to the ingest API as the WhyOps SDK sends it (three steps a turn), in arrays."""
    start = datetime.now(UTC) - timedelta(seconds=turns * 3)

    def event(kind: str, second: float, content: Any, **metadata: Any) -> dict[str, Any]:
        return {"eventType": kind, "traceId": trace_id, "agentName": agent.name, "externalUserId": user,
                "timestamp": (start + timedelta(seconds=second)).isoformat(), "content": content,
                **({"metadata": metadata} if metadata else {})}

    def llm(second: float, text: str | None, calls: list | None, prompt: int) -> dict[str, Any]:
        usage = {"promptTokens": prompt, "completionTokens": 60, "totalTokens": prompt + 60,
                 "cacheReadTokens": prompt * 8 // 10}
        return event("llm_response", second, {"content": text, "toolCalls": calls, "finishReason": "tool_use" if calls
                     else "end_turn"}, model=ANTHROPIC_MODEL, provider="anthropic", usage=usage, latencyMs=900)

    events = [event("user_message", 0, {"messages": [{"role": "user", "content": "Compare the weather in 100 cities."}]})]
    for turn in range(turns):
        second, span, city = turn * 3 + 1, str(uuid.uuid4()), f"City {turn + 1}"
        call = [{"name": "get_weather", "arguments": {"city": city}}]
        events += [
            llm(second, None, [{"id": f"call_{turn}", "function": {"name": "get_weather",
                                                                    "arguments": json.dumps({"city": city})}}], 800 + 40 * turn),
            {**event("tool_call_request", second + 1, {"toolCalls": call}, tool="get_weather"), "spanId": span},
            {**event("tool_call_response", second + 2, {"toolCalls": call,
                                                         "toolResults": json.loads(run_tool("get_weather", {"city": city}))},
                     tool="get_weather", latencyMs=950), "spanId": span},
        ]
    events.append(llm(turns * 3 + 1, "All 100 cities compared: light rain everywhere, 18 °C.", None, 800 + 40 * turns))
    for first in range(0, len(events), 100):
        agent.ingest(events[first:first + 100])


def scenarios(client: httpx.Client, suffix: str = "") -> list[tuple[str, Callable[[str], None]]]:
    """(trace id, run of that trace) for each run of the demo."""
    support, research = Agent(client, SUPPORT, TOOLS), Agent(client, RESEARCH, TOOLS)
    alice, bob = USERS
    runs: list[tuple[str, Callable[[str], None]]] = [
        ("demo-openai-tools", lambda trace: openai_tool_loop(support, trace, alice, "Do I need an umbrella in Paris right now?",
                                                             stream=False)),
        ("demo-openai-streamed", lambda trace: openai_tool_loop(support, trace, bob, "What time is it in Tokyo, and is it "
                                                                "raining?", stream=True)),
        ("demo-anthropic-thinking", lambda trace: anthropic_run(research, trace, alice, "Should I cycle to work in Berlin "
                                                                "today?", thinking=True)),
        ("demo-upstream-error", lambda trace: anthropic_run(support, trace, bob, "Is my flight to Oslo affected by the "
                                                            "weather?", fail_first=529)),
        ("demo-prompt-cache", lambda trace: _cached_session(research, trace, alice)),
        ("demo-long-run", lambda trace: long_run(research, trace, bob)),
    ]
    return [(name + suffix, scenario) for name, scenario in runs]


def _cached_session(agent: Agent, trace_id: str, user: str) -> None:
    """Three questions in one conversation on a cached system prompt: the first call writes the cache, later ones read it."""
    messages: list = []
    for question in ("Weather in Lisbon?", "And in Porto?", "And in Faro?"):
        messages = anthropic_run(agent, trace_id, user, question, cache=True, messages=messages)


def run(base_url: str, api_key: str | None = None) -> list[str]:
    """Record every run of the demo on the server at ``base_url``; the trace ids, in order."""
    # The server's own key, when it requires one, is what its clients send (to the proxy as their API key).
    key = api_key or "demo"
    headers = {"Authorization": f"Bearer {key}", "x-api-key": key}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        # Run again on a kept data dir, the demo records new traces rather than adding to the old ones.
        suffix = f"-{uuid.uuid4().hex[:6]}" if client.get("/api/traces", params={"limit": 1}).json()["traces"] else ""
        runs = scenarios(client, suffix)
        for trace_id, scenario in runs:
            scenario(trace_id)
    return [trace_id for trace_id, _ in runs]

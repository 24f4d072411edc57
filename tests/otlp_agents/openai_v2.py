"""A tool-calling agent on the openai SDK, traced by opentelemetry-instrumentation-openai-v2 (content
capture on): a plain chat answering with tool calls, two tool spans, then a streamed chat. Prints the
OTel trace id. Run as a script (the instrumentation patches the openai SDK for the whole process)."""

import json
import os
import sys

from openai import OpenAI
from opentelemetry import trace
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

from tests.otlp_agents.exporting import tracer_provider

provider = tracer_provider("openai-v2-agent")
OpenAIInstrumentor().instrument()
client = OpenAI(base_url=os.environ["FAKE_PROVIDER_URL"] + "/v1", api_key="sk-fake")
tracer = trace.get_tracer("weather-agent")
TOOLS = [{"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}
         for name in ("get_weather", "get_time")]

with tracer.start_as_current_span("invoke_agent weather-agent", attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather-agent", "user.id": "user-7"}) as root:
    messages = [{"role": "system", "content": "You answer about weather."},
                {"role": "user", "content": "Weather and time in Paris?"}]
    answer = client.chat.completions.create(model="gpt-4o-mini-tools", messages=messages, tools=TOOLS)
    messages.append(answer.choices[0].message.model_dump(exclude_none=True))
    for call in answer.choices[0].message.tool_calls:
        result = {"get_weather": {"sky": "sunny"}, "get_time": {"time": "12:00"}}[call.function.name]
        with tracer.start_as_current_span(f"execute_tool {call.function.name}", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": call.function.name,
                "gen_ai.tool.call.id": call.id, "gen_ai.tool.call.arguments": call.function.arguments,
                "gen_ai.tool.call.result": json.dumps(result)}):
            messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                            stream_options={"include_usage": True})
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    trace_id = format(root.get_span_context().trace_id, "032x")

provider.shutdown()  # flushes the batch: the exporter's requests are answered before this returns
json.dump({"traceId": trace_id, "text": text}, sys.stdout)

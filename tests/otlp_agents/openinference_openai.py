"""The same tool-calling exchange as openai_v2.py, traced by openinference-instrumentation-openai
(flattened llm.input_messages.N.* attributes, llm.token_count.*). Prints the OTel trace id."""

import json
import os
import sys

from openai import OpenAI
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry import trace

from tests.otlp_agents.exporting import tracer_provider

provider = tracer_provider("openinference-agent")
OpenAIInstrumentor().instrument(tracer_provider=provider)
client = OpenAI(base_url=os.environ["FAKE_PROVIDER_URL"] + "/v1", api_key="sk-fake")
tracer = trace.get_tracer("weather-agent")
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]

with tracer.start_as_current_span("weather-agent", attributes={"openinference.span.kind": "AGENT",
                                                              "session.id": os.environ["SESSION_ID"]}) as root:
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    answer = client.chat.completions.create(model="gpt-4o-mini-tools", messages=messages, tools=TOOLS)
    messages.append(answer.choices[0].message.model_dump(exclude_none=True))
    for call in answer.choices[0].message.tool_calls:
        with tracer.start_as_current_span(call.function.name, attributes={
                "openinference.span.kind": "TOOL", "tool.name": call.function.name, "tool_call.id": call.id,
                "input.value": call.function.arguments, "output.value": json.dumps({"sky": "sunny"})}):
            messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                            stream_options={"include_usage": True})
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    trace_id = format(root.get_span_context().trace_id, "032x")

provider.shutdown()
json.dump({"traceId": trace_id, "text": text}, sys.stdout)

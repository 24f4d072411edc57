"""A pydantic-ai agent with a tool and instrument=True, its OpenAI model pointed at the fake provider.
Prints the OTel trace id of the run."""

import json
import os
import sys

from opentelemetry import trace
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.otlp_agents.exporting import tracer_provider

provider = tracer_provider("pydantic-ai-service")
model = OpenAIChatModel("gpt-4o-mini-tools-once",
                        provider=OpenAIProvider(base_url=os.environ["FAKE_PROVIDER_URL"] + "/v1", api_key="sk-fake"))
agent = Agent(model, name="weather-agent", system_prompt="You answer about weather.")
agent.instrument = True  # what instrument=True in the constructor did in earlier releases


@agent.tool_plain
def get_weather(city: str) -> dict:
    return {"city": city, "sky": "sunny"}


@agent.tool_plain
def get_time(tz: str) -> dict:
    return {"tz": tz, "time": "12:00"}


tracer = trace.get_tracer("runner")
with tracer.start_as_current_span("request") as root:
    result = agent.run_sync("Weather and time in Paris?")
    trace_id = format(root.get_span_context().trace_id, "032x")
provider.shutdown()
json.dump({"traceId": trace_id, "text": result.output}, sys.stdout)

"""An OpenAI Agents SDK agent with a function tool, traced by openinference-instrumentation-openai-agents,
its model pointed at the fake provider and the SDK's own export to OpenAI off. Prints the trace id."""

import json
import os
import sys

from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_trace_processors
from openai import AsyncOpenAI
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

from tests.otlp_agents.exporting import tracer_provider

provider = tracer_provider("agents-sdk-service")
set_trace_processors([])  # nothing goes to OpenAI's tracing backend
OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)
client = AsyncOpenAI(base_url=os.environ["FAKE_PROVIDER_URL"] + "/v1", api_key="sk-fake")


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return json.dumps({"city": city, "sky": "sunny"})


agent = Agent(name="weather-agent", instructions="You answer about weather.", tools=[get_weather],
              model=OpenAIResponsesModel("gpt-4o-mini-tools-once", openai_client=client))
result = Runner.run_sync(agent, "Weather in Paris?")
provider.shutdown()
json.dump({"text": result.final_output}, sys.stdout)

"""The event kinds of the WhyOps protocol: their names, what a person calls them, and how they group.

The one place these are spelled: models (``Event.event_type`` choices), validation, totals, the
graph, the templates and, through the page's data, the scripts.
"""

# event type -> what a person calls it
KIND_NAMES = {
    "user_message": "User message",
    "llm_response": "LLM response",
    "llm_thinking": "Thinking",
    "embedding_request": "Embedding request",
    "embedding_response": "Embedding response",
    "tool_call": "Tool call",
    "tool_call_request": "Tool call request",
    "tool_call_response": "Tool call response",
    "tool_result": "Tool result",
    "error": "Error",
    # An OpenTelemetry span that is neither an LLM call nor a tool (an agent, a chain, anything else).
    "span": "Span",
}
EVENT_TYPES = tuple(KIND_NAMES)

LLM_EVENTS = ("llm_response",)
PRICED_EVENTS = ("llm_response", "embedding_response")  # LLM calls and embeddings: each has a cost
TOOL_SPAN_STARTS = ("tool_call_request", "tool_call")  # one per tool call
TOOL_EVENTS = ("tool_call", "tool_call_request", "tool_call_response")  # the events of a tool span

# event type -> the kind of step it is in the graph (a tool span's request and response are one node)
STEP_KINDS = {
    "user_message": "user",
    "llm_response": "llm",
    "llm_thinking": "thinking",
    "tool_call": "tool",
    "tool_call_request": "tool",
    "tool_call_response": "tool",
    "tool_result": "tool_result",
    "embedding_request": "embedding",
    "embedding_response": "embedding",
    "error": "error",
    "span": "span",
}
STEP_KIND_NAMES = {
    "user": "User", "llm": "LLM", "thinking": "Thinking", "tool": "Tool", "tool_result": "Tool result",
    "embedding": "Embedding", "error": "Error", "span": "Span",
}

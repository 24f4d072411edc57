"""OTLP decoding and the gen_ai / OpenInference mappings (pure, no server)."""

import gzip
import json

import pytest

from whyops_local.domain.schemas import Invalid
from whyops_local.otlp import decode, mapping
from whyops_local.otlp.decode import Span
from whyops_local.pages.graph import label
from whyops_local.proxy.providers import anthropic

START = 1_764_000_000_000_000_000


def span(attributes=None, name="chat gpt-4o", span_id="00000000000000a1", parent=None, start=START, events=(),
         status=0, message="", resource=None):
    return Span(trace_id="0af7651916cd43dd8448eb211c80319c", span_id=span_id, parent_id=parent, name=name, kind=3,
                start_ns=start, end_ns=start + 250_000_000, attributes=attributes or {},
                resource=resource or {"service.name": "svc"}, scope="test", status_code=status,
                status_message=message, events=list(events))


def by_type(events):
    return {event["eventType"]: event for event in events}


def test_a_current_semconv_chat_span_gives_its_messages_and_an_answer_with_tool_calls_and_usage():
    events = mapping.span_events(span({
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.response.finish_reasons": ["tool_calls"],
        "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 12,
        "gen_ai.usage.cache_read.input_tokens": 100, "gen_ai.usage.reasoning.output_tokens": 4,
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Weather?"}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]}]),
    }))
    kinds = by_type(events)
    assert [e["eventType"] for e in events] == ["user_message", "llm_response"]
    assert kinds["user_message"]["content"]["messages"] == [{"role": "system", "content": "Be brief."},
                                                            {"role": "user", "content": "Weather?"}]
    answer = kinds["llm_response"]
    assert answer["content"] == {"toolCalls": [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Paris"}'}}], "finishReason": "tool_calls"}
    assert answer["metadata"]["model"] == "gpt-4o-2024-08-06" and answer["metadata"]["provider"] == "openai"
    assert answer["metadata"]["usage"] == {"promptTokens": 120, "completionTokens": 12, "totalTokens": 132,
                                           "cacheReadTokens": 100, "reasoningTokens": 4}
    assert answer["metadata"]["latencyMs"] == 250.0
    assert answer["parentStepId"] == kinds["user_message"]["stepId"]
    # The messages are the events' content, not kept again among the span's attributes.
    kept = kinds["user_message"]["metadata"]["otel"]["attributes"]
    assert "gen_ai.request.model" in kept and not {"gen_ai.input.messages", "gen_ai.output.messages",
                                                   "gen_ai.system_instructions"} & set(kept)


def test_anthropic_input_tokens_counted_with_the_cache_as_the_conventions_say_become_the_proxys_usage():
    # Anthropic answered input_tokens 25 (uncached), 300 read, 40 written; the conventions' input is all 365.
    proxied = anthropic.usage({"input_tokens": 25, "output_tokens": 5, "cache_read_input_tokens": 300,
                               "cache_creation_input_tokens": 40})
    for attributes in ({"gen_ai.usage.input_tokens": 365, "gen_ai.usage.output_tokens": 5,
                        "gen_ai.usage.cache_read.input_tokens": 300, "gen_ai.usage.cache_creation.input_tokens": 40},
                       {"llm.token_count.prompt": 365, "llm.token_count.completion": 5,
                        "llm.token_count.prompt_details.cache_read": 300,
                        "llm.token_count.prompt_details.cache_write": 40}):
        assert mapping.usage(span(attributes), "anthropic") == proxied
    assert proxied == {"promptTokens": 25, "completionTokens": 5, "cacheReadTokens": 300, "cacheCreationTokens": 40,
                       "totalTokens": 370}


def test_anthropic_input_tokens_below_the_cache_tokens_are_taken_as_anthropics_own_uncached_count():
    usage = mapping.usage(span({"gen_ai.usage.input_tokens": 20, "gen_ai.usage.output_tokens": 5,
                                "gen_ai.usage.cache_read_input_tokens": 300,
                                "gen_ai.usage.cache_creation.input_tokens": 40}), "anthropic")
    assert usage == {"promptTokens": 20, "completionTokens": 5, "cacheReadTokens": 300, "cacheCreationTokens": 40,
                     "totalTokens": 365}


def test_openinference_flattened_messages_token_counts_and_reasoning_are_read():
    events = mapping.span_events(span({
        "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.provider": "openai",
        "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "Be brief.",
        "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": "Hi",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.contents.0.message_content.type": "reasoning",
        "llm.output_messages.0.message.contents.0.message_content.text": "Thinking it over.",
        "llm.output_messages.0.message.contents.1.message_content.type": "text",
        "llm.output_messages.0.message.contents.1.message_content.text": "Hello",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_9",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"q": 1}',
        "llm.token_count.prompt": 50, "llm.token_count.completion": 5, "llm.token_count.total": 55,
        "llm.token_count.prompt_details.cache_read": 10, "llm.token_count.prompt_details.cache_write": 3,
        "llm.token_count.completion_details.reasoning": 2,
    }, name="ChatCompletion"))
    kinds = by_type(events)
    assert kinds["user_message"]["content"]["messages"] == [{"role": "system", "content": "Be brief."},
                                                            {"role": "user", "content": "Hi"}]
    assert kinds["llm_thinking"]["content"] == {"type": "thinking", "thinking": "Thinking it over."}
    assert kinds["llm_response"]["content"]["content"] == "Hello"
    assert kinds["llm_response"]["content"]["toolCalls"][0]["function"] == {"name": "lookup", "arguments": '{"q": 1}'}
    assert kinds["llm_response"]["metadata"]["usage"] == {
        "promptTokens": 50, "completionTokens": 5, "totalTokens": 55, "cacheReadTokens": 10,
        "cacheCreationTokens": 3, "reasoningTokens": 2}


def test_deprecated_gen_ai_prompt_and_completion_attributes_are_read():
    events = mapping.span_events(span({
        "gen_ai.system": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Hi",
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Hello",
        "gen_ai.completion.0.finish_reason": "stop",
        "gen_ai.usage.prompt_tokens": 7, "gen_ai.usage.completion_tokens": 2}))
    kinds = by_type(events)
    assert kinds["user_message"]["content"]["messages"] == [{"role": "user", "content": "Hi"}]
    assert kinds["llm_response"]["content"] == {"content": "Hello", "finishReason": "stop"}
    assert kinds["llm_response"]["metadata"]["usage"] == {"promptTokens": 7, "completionTokens": 2, "totalTokens": 9}


def test_gen_ai_message_events_on_the_span_are_its_messages():
    events = mapping.span_events(span({"gen_ai.operation.name": "chat", "gen_ai.system": "openai"}, events=[
        {"name": "gen_ai.user.message", "timeNs": START, "attributes": {"content": "Hi"}},
        {"name": "gen_ai.choice", "timeNs": START, "attributes": {"message": '{"content": "Hello"}',
                                                                  "finish_reason": "stop"}}]))
    kinds = by_type(events)
    assert kinds["user_message"]["content"]["messages"] == [{"role": "user", "content": "Hi"}]
    assert kinds["llm_response"]["content"] == {"content": "Hello", "finishReason": "stop"}


def test_a_tool_span_is_a_paired_request_and_response_with_arguments_and_result():
    request, response = mapping.span_events(span({
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather", "gen_ai.tool.call.id": "call_1",
        "gen_ai.tool.call.arguments": '{"city": "Paris"}', "gen_ai.tool.call.result": '{"sky": "sunny"}'}))
    assert request["eventType"] == "tool_call_request" and response["eventType"] == "tool_call_response"
    assert request["spanId"] == response["spanId"]
    assert request["content"]["toolCalls"] == [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]
    assert response["content"]["toolResults"] == {"sky": "sunny"}
    assert response["metadata"] == {"tool": "get_weather", "latencyMs": 250.0, "otel": {"spanId": "00000000000000a1"}}


def test_agent_chain_and_unknown_spans_are_kept_as_spans_and_their_usage_is_not_an_llm_call():
    agent = mapping.span_events(span({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "bot",
                                      "gen_ai.usage.input_tokens": 999}, name="invoke_agent bot"))
    chain = mapping.span_events(span({"openinference.span.kind": "CHAIN"}, name="turn"))
    unknown = mapping.span_events(span({"http.method": "GET"}, name="GET /"))
    assert [e["eventType"] for e in agent + chain + unknown] == ["span", "span", "span"]
    assert agent[0]["content"] == {"name": "invoke_agent bot", "kind": "agent", "agent": "bot"}
    assert "usage" not in agent[0]["metadata"]
    assert unknown[0]["metadata"]["otel"]["attributes"] == {"http.method": "GET"}
    assert label({**unknown[0], "id": 1}) == "GET /"  # the graph names it by its span name


def test_error_status_and_exception_events_become_error_events():
    failed = mapping.span_events(span({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "t"}, status=2,
                                      message="boom", events=[{"name": "exception", "timeNs": START, "attributes": {
                                          "exception.type": "ValueError", "exception.message": "bad city"}}]))
    assert failed[-1]["eventType"] == "error"
    assert failed[-1]["content"]["message"] == "bad city" and failed[-1]["content"]["errorType"] == "ValueError"
    status_only = mapping.span_events(span({}, status=2, message="upstream 500"))
    assert status_only[-1]["content"] == {"message": "upstream 500"}


def test_steps_follow_start_time_and_are_the_same_for_a_retried_span():
    early, late = span(span_id="00000000000000b2", start=START), span(span_id="00000000000000a1", start=START + 1000)
    assert mapping.span_step(early) < mapping.span_step(late)
    assert mapping.span_events(early) == mapping.span_events(span(span_id="00000000000000b2", start=START))
    assert mapping.span_step(span(span_id="0000000000000001")) != mapping.span_step(span(span_id="0000000000000002"))
    # The pages' JavaScript reads step ids as numbers: exact only below 2**53, for decades yet.
    assert mapping.span_step(span(start=2_900_000_000 * 10**9), mapping.SLOTS - 1) < 2**53
    assert mapping.span_step(span(start=0)) > 0


def test_conversation_id_agent_name_and_user_are_shared_by_the_spans_of_an_otel_trace():
    spans = [span({"gen_ai.conversation.id": "conv-1"}), span({"gen_ai.agent.name": "bot", "enduser.id": "u1"},
                                                               span_id="00000000000000b2")]
    ((shared, members),) = mapping.grouped(spans)
    assert shared == {"traceId": "conv-1", "agentName": "bot", "externalUserId": "u1"} and len(members) == 2
    ((plain, _),) = mapping.grouped([span()])
    assert plain == {"traceId": "0af7651916cd43dd8448eb211c80319c", "agentName": "svc"}


def _json_body(**span_fields):
    fields = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "x",
              "startTimeUnixNano": str(START), "endTimeUnixNano": str(START + 10),
              "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "3"}}], **span_fields}
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}}]}, "scopeSpans": [{"spans": [fields]}]}]}).encode()


def test_otlp_json_with_hex_ids_and_gzip_decodes():
    body = decode.inflate(gzip.compress(_json_body()), "gzip", 10_000)
    (found,) = decode.spans(decode.parse_request(body, decode.JSON))
    assert (found.trace_id, found.span_id, found.parent_id) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331",
                                                                 None)
    assert found.attributes == {"gen_ai.usage.input_tokens": 3} and found.resource == {"service.name": "svc"}
    assert found.start_ns == START


def test_a_span_without_ids_is_named_in_the_error():
    with pytest.raises(Invalid) as refused:
        decode.spans(decode.parse_request(_json_body(spanId=""), decode.JSON))
    assert refused.value.details[0]["field"] == "resourceSpans.0.scopeSpans.0.spans.0.spanId"


def test_truncated_protobuf_and_bombs_are_refused():
    request = decode.parse_request(_json_body(), decode.JSON)
    with pytest.raises(Invalid, match="Malformed protobuf"):
        decode.parse_request(request.SerializeToString()[:-7], decode.PROTOBUF)
    with pytest.raises(Invalid) as bomb:
        decode.inflate(gzip.compress(b"0" * 100_000), "gzip", 1000)
    assert bomb.value.status == 413

"""A fake OpenAI and Anthropic API on 127.0.0.1 that speaks their wire formats (demo, tests, benchmarks).

Behaviour is picked by the request's model name, so real SDK clients can drive it:
``error-<status>`` answers that status with the provider's error body, ``slow-<seconds>`` waits before
answering, ``gated`` streams its first chunk(s) and then waits for ``FakeUpstream.gate``, ``cut`` drops the
connection in the middle of a stream, ``tools`` answers with tool calls, ``garbage`` answers 200 with
an HTML page (as JSON, or as an event stream when asked to stream), ``echo`` answers with the request's
headers (in its text, in an ``x-echo-authorization`` header, and streamed with the credential split across
two writes), as a debugging gateway may; an ``x-fake-status`` header
answers that status too. Every request is kept in ``requests`` and every answer's exact bytes in ``sent``.
An ``X-Fake-Id: <n>`` header fixes the number in the answer's ids, so two requests can be answered with
the same bytes.
The model names ``varied`` (tool arguments that change with each round of tool results, as a working
agent's do), ``truncated`` (answers cut at the token limit), ``empty`` (no text) and ``cached`` (2,048
cache-read tokens while the system prompt and tools stay those of the previous ``cached`` call; 0 read,
2,048 written when they change) serve the flag tests.

``FakeUpstream(agentic=True)`` (the demo's) answers as a model in an agent loop does instead: it calls the
offered tools until the conversation ends with their results, then sums those results up, taking 150 ms
a call and 20 ms a chunk; its usage is sized from the request, with prompt-cache writes and reads where
the request asks for caching.
"""

import base64
import json
import re
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


def sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "").encode() + f"data: {text}\n\n".encode()


def _model(body: dict | None) -> str:
    return (body or {}).get("model") or ""


def _tool_results(body: dict) -> list[str]:
    """The tool results the request's conversation ends with (OpenAI ``tool`` messages, Anthropic ``tool_result`` blocks)."""
    messages = body.get("messages") or []
    results = []
    for message in reversed(messages):
        content = message.get("content")
        if message.get("role") == "tool":
            results.insert(0, str(content))
            continue
        if message.get("role") == "user" and isinstance(content, list):
            results = [str(block.get("content")) for block in content if block.get("type") == "tool_result"]
        break
    return results


def _tokens(body: dict) -> int:
    """About how many tokens the request's prompt holds (4 characters a token)."""
    return max(1, len(json.dumps([body.get("system"), body.get("tools"), body.get("messages")])) // 4)


def _named_tools(body: dict) -> bool:
    """A model named ``...tools...`` answers with tool calls; ``...tools-once...`` only until it has
    tool results, so an agent loop ends."""
    model = _model(body)
    if "tools-once" in model:
        last = ((body.get("messages") or body.get("input") or [{}]) or [{}])[-1]
        return not (isinstance(last, dict) and (last.get("role") == "tool" or last.get("type") == "function_call_output"))
    return "tools" in model


class FakeUpstream:
    def __init__(self, agentic: bool = False) -> None:
        self.agentic = agentic
        self.requests: list[Received] = []
        self.sent: list[bytes] = []
        self.gate = threading.Event()
        self.gate_before = 1  # the index of the chunk a ``gated`` stream holds back until the gate opens
        self.chunk_delay = 0.02 if agentic else 0.0
        self._calls = 0
        self._lock = threading.Lock()
        self._request = threading.local()  # each request is handled on a thread of its own
        self._cached_prefix: str | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients hanging up (tests of exactly that) are not errors here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeUpstream":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()

    def next_id(self) -> int:
        with self._lock:
            self._calls += 1
            fixed = getattr(self._request, "fixed_id", None)
            return int(fixed) if fixed else self._calls

    # --- plumbing -----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        anthropic = "anthropic-version" in handler.headers
        self._request.fixed_id = handler.headers.get("x-fake-id")
        self.requests.append(Received(handler.command, handler.path, {k.lower(): v for k, v in handler.headers.items()}, body))
        model = _model(body)
        if match := re.search(r"slow-([\d.]+)", model):
            time.sleep(float(match.group(1)))
        elif self.agentic:  # a model takes a moment, and the demo's timelines show it
            time.sleep(0.15)
        error = re.search(r"error-(\d+)", model)
        if status := int(error.group(1)) if error else int(handler.headers.get("x-fake-status") or 0):
            return self._error(handler, status, anthropic)
        if "garbage" in model:
            page = [b"<html>\n<body>Bad gateway</body>\n", b"</html>\n"]
            if (body or {}).get("stream"):
                return self._stream(handler, page, gated=False, cut=False)
            return self._send(handler, 200, b"".join(page))  # as application/json
        if "echo" in model:
            return self._echo(handler, body or {})
        path = handler.path.split("?")[0]
        routes = {
            "/v1/chat/completions": self._chat, "/v1/responses": self._responses,
            "/v1/embeddings": self._embeddings, "/v1/messages": self._messages,
            "/v1/messages/count_tokens": lambda b: {"input_tokens": 12},
            "/v1/models": self._models_anthropic if anthropic else self._models_openai,
        }
        if path not in routes:
            return self._send(handler, 404, json.dumps({"error": {"message": f"no route {path}"}}).encode())
        answer = routes[path](body or {})
        if isinstance(answer, list):
            return self._stream(handler, answer, gated="gated" in model, cut="cut" in model)
        # As OpenAI's edge does: cookies for this client, which must not reach any other.
        self._send(handler, 200, json.dumps(answer).encode(),
                   [("x-request-id", f"req_{self.next_id()}"), ("set-cookie", f"__cf_bm=fake-{self._calls}; path=/"),
                    ("set-cookie", f"_cfuvid=fake-{self._calls}; path=/; HttpOnly")])

    def _send(self, handler: BaseHTTPRequestHandler, status: int, payload: bytes,
              headers: list[tuple[str, str]] = ()) -> None:
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(payload)))
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        self.sent.append(payload)
        handler.wfile.write(payload)

    def _echo(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        seen = {name.lower(): value for name, value in handler.headers.items()}
        credential = seen.get("authorization") or seen.get("x-api-key") or ""
        n = self.next_id()
        head = {"id": f"chatcmpl-{n}", "created": 1700000000, "model": _model(body)}
        text = json.dumps(seen)
        if not body.get("stream"):
            answer = {**head, "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
            return self._send(handler, 200, json.dumps(answer).encode(), [("x-echo-authorization", credential)])
        event = sse({**head, "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
        at = event.find(credential.encode()) if credential else -1
        middle = at + len(credential) // 2 if at >= 0 else len(event) // 2
        self._stream(handler, [event[:middle], event[middle:], sse("[DONE]")], gated=False, cut=False, pause=0.05)

    def _stream(self, handler: BaseHTTPRequestHandler, chunks: list[bytes], gated: bool, cut: bool,
                pause: float = 0.0) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream; charset=utf-8")
        handler.send_header("transfer-encoding", "chunked")
        handler.send_header("x-request-id", f"req_{self.next_id()}")
        handler.end_headers()
        # Kept up front: a client may have read it all before the final empty chunk is written.
        self.sent.append(b"".join(chunks[:2] if cut else chunks))
        try:
            for index, chunk in enumerate(chunks):
                if cut and index == 2:
                    handler.close_connection = True
                    return
                if index == self.gate_before and gated:
                    self.gate.wait(20)
                elif index and (self.chunk_delay or pause):
                    time.sleep(self.chunk_delay or pause)
                handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    def _error(self, handler: BaseHTTPRequestHandler, status: int, anthropic: bool) -> None:
        if anthropic:
            kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
            payload = {"type": "error", "error": {"type": kind,
                                                  "message": f"fake upstream error {status}"}}
        else:
            payload = {"error": {"message": f"fake upstream error {status}", "type": "server_error",
                                 "param": None, "code": None}}
        self._send(handler, status, json.dumps(payload).encode())

    def _calls_tools(self, body: dict) -> bool:
        if self.agentic:
            return bool(body.get("tools")) and not _tool_results(body)
        return _named_tools(body)

    def _text(self, body: dict) -> str:
        if not self.agentic:
            return "" if "empty" in _model(body) else "Hello wor" if "truncated" in _model(body) else "Hello world"
        results = _tool_results(body)
        if results:
            return f"From the tools: {'; '.join(results)}."
        return "Let me look that up." if body.get("tools") else "Hello world"

    def _openai_usage(self, body: dict) -> dict:
        if not self.agentic:
            return {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132,
                    "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
                    # As reasoning models do: part of the completion tokens.
                    "completion_tokens_details": {"reasoning_tokens": 8 if body.get("reasoning_effort") else 0}}
        # OpenAI caches prompts of 1,024 tokens and more by itself, in steps of 128, once seen.
        prompt = _tokens(body)
        cached = (prompt - 1) // 128 * 128 if prompt >= 1024 and len(body.get("messages") or []) > 2 else 0
        return {"prompt_tokens": prompt, "completion_tokens": 24, "total_tokens": prompt + 24,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0}}

    def _anthropic_usage(self, body: dict) -> dict:
        if not self.agentic:
            return {"input_tokens": 25, "cache_creation_input_tokens": 50, "cache_read_input_tokens": 100,
                    "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 30},
                    "output_tokens": 15, "service_tier": "standard"}
        prompt, written, read = _tokens(body), 0, 0
        if "cache_control" in json.dumps(body):  # the first call writes the cached prefix, later ones read it
            cached = prompt * 9 // 10
            written, read = (cached, 0) if len(body.get("messages") or []) == 1 else (prompt // 10, cached - prompt // 10)
        return {"input_tokens": prompt - written - read, "cache_creation_input_tokens": written,
                "cache_read_input_tokens": read,
                "cache_creation": {"ephemeral_5m_input_tokens": written, "ephemeral_1h_input_tokens": 0},
                "output_tokens": 48, "service_tier": "standard"}

    def _cache_read(self, body: dict) -> int | None:
        """For a ``cached`` model: 2,048 tokens read when the prompt prefix is the previous call's, else 0."""
        if "cached" not in _model(body):
            return None
        system = body.get("system") or [m for m in body.get("messages") or [] if m.get("role") == "system"]
        prefix = json.dumps([system, body.get("tools")], sort_keys=True)
        with self._lock:
            hit, self._cached_prefix = prefix == self._cached_prefix, prefix
        return 2048 if hit else 0

    @staticmethod
    def _city(body: dict) -> str:
        """Paris, unless a ``varied`` model asks: then one city per round of tool results so far."""
        if "varied" not in _model(body):
            return "Paris"
        rounds = sum(1 for m in body.get("messages") or [] if m.get("role") == "tool" or (
            isinstance(m.get("content"), list) and any(isinstance(b, dict) and b.get("type") == "tool_result"
                                                       for b in m["content"])))
        return ["Paris", "Lyon", "Nice", "Lille", "Brest"][rounds % 5]

    def _tz(self, body: dict) -> dict[str, str]:
        return {"tz": "CET", **({"city": self._city(body)} if "varied" in _model(body) else {})}

    # --- OpenAI -------------------------------------------------------------------------------

    def _chat(self, body: dict) -> Any:
        n = self.next_id()
        tools, text = self._calls_tools(body), self._text(body)
        calls = [{"id": f"call_{n}_{i}", "type": "function",
                  "function": {"name": name, "arguments": json.dumps(args)}}
                 for i, (name, args) in enumerate([("get_weather", {"city": self._city(body)}), ("get_time", self._tz(body))])]
        usage = self._openai_usage(body)
        head = {"id": f"chatcmpl-{n}", "created": 1700000000, "model": _model(body), "system_fingerprint": "fp_fake"}
        if (read := self._cache_read(body)) is not None:
            usage = {**usage, "prompt_tokens": 2200, "total_tokens": 2212, "prompt_tokens_details": {"cached_tokens": read}}
        if not body.get("stream"):
            message = {"role": "assistant", "content": None if tools else text, "refusal": None}
            if tools:
                message["tool_calls"] = calls
            finish = "tool_calls" if tools else "length" if "truncated" in _model(body) else "stop"
            return {**head, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}]}

        # Asked for usage, OpenAI adds "usage": null to every chunk and a usage-only chunk at the end.
        include_usage = (body.get("stream_options") or {}).get("include_usage")

        def chunk(delta: dict, finish: str | None = None) -> bytes:
            choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            return sse({**head, "object": "chat.completion.chunk", "choices": choices,
                        **({"usage": None} if include_usage else {})})

        chunks = [chunk({"role": "assistant", "content": ""})]
        if tools:
            for i, call in enumerate(calls):
                arguments = call["function"]["arguments"]
                chunks.append(chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                                     "function": {"name": call["function"]["name"], "arguments": ""}}]}))
                for part in (arguments[:5], arguments[5:]):
                    chunks.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]}))
            chunks.append(chunk({}, "tool_calls"))
        else:
            chunks += [chunk({"content": text[:5]}), chunk({"content": text[5:]}), chunk({}, "stop")]
        if include_usage:
            chunks.append(sse({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
        return [*chunks, sse("[DONE]")]

    def _responses(self, body: dict) -> Any:
        n = self.next_id()
        tools = self._calls_tools(body)
        message = {"id": f"msg_{n}", "type": "message", "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "text": "Hello world", "annotations": []}]}
        call = {"id": f"fc_{n}", "type": "function_call", "status": "completed", "call_id": f"call_{n}",
                "name": "get_weather", "arguments": json.dumps({"city": "Paris"})}
        output = [{"id": f"rs_{n}", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Thought."}]},
                  call if tools else message]
        response = {"id": f"resp_{n}", "object": "response", "created_at": 1700000000, "status": "completed",
                    "model": _model(body), "output": output, "incomplete_details": None,
                    "usage": {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 10},
                              "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2},
                              "total_tokens": 55}}
        if not body.get("stream"):
            return response
        created = {**response, "status": "in_progress", "output": [], "usage": None}
        reasoning, final = output
        events = [("response.created", {"response": created}),
                  ("response.output_item.added", {"output_index": 0, "item": reasoning}),
                  ("response.output_item.done", {"output_index": 0, "item": reasoning})]
        if tools:
            events += [("response.output_item.added", {"output_index": 1, "item": {**call, "arguments": ""}}),
                       ("response.function_call_arguments.delta", {"output_index": 1, "item_id": call["id"],
                                                                   "delta": call["arguments"]}),
                       ("response.function_call_arguments.done", {"output_index": 1, "item_id": call["id"],
                                                                  "arguments": call["arguments"]})]
        else:
            part = {"type": "output_text", "text": "", "annotations": []}
            where = {"output_index": 1, "item_id": message["id"], "content_index": 0}
            events += [("response.output_item.added", {"output_index": 1, "item": {**message, "content": []}}),
                       ("response.content_part.added", {**where, "part": part}),
                       ("response.output_text.delta", {**where, "delta": "Hello"}),
                       ("response.output_text.delta", {**where, "delta": " world"}),
                       ("response.output_text.done", {**where, "text": "Hello world"}),
                       ("response.content_part.done", {**where, "part": message["content"][0]})]
        events += [("response.output_item.done", {"output_index": 1, "item": final}),
                   ("response.completed", {"response": response})]
        return [sse({"type": kind, "sequence_number": i, **data}, kind) for i, (kind, data) in enumerate(events)]

    def _embeddings(self, body: dict) -> dict:
        given = body.get("input")
        inputs = [given] if isinstance(given, str) else given or []
        vector = [0.125 * i for i in range(8)]
        encoded = base64.b64encode(struct.pack("<8f", *vector)).decode()
        use_base64 = body.get("encoding_format") == "base64"
        return {"object": "list", "model": _model(body), "usage": {"prompt_tokens": 7, "total_tokens": 7},
                "data": [{"object": "embedding", "index": i, "embedding": encoded if use_base64 else vector}
                         for i in range(len(inputs))]}

    def _models_openai(self, body: dict) -> dict:
        return {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "created": 1, "owned_by": "openai"}]}

    def _models_anthropic(self, body: dict) -> dict:
        return {"data": [{"type": "model", "id": "claude-sonnet-4-6", "display_name": "Claude Sonnet 4.6",
                          "created_at": "2025-09-29T00:00:00Z"}], "has_more": False, "first_id": "claude-sonnet-4-6",
                "last_id": "claude-sonnet-4-6"}

    # --- Anthropic ----------------------------------------------------------------------------

    def _messages(self, body: dict) -> Any:
        n = self.next_id()
        thinking = bool(body.get("thinking"))
        tools, text, usage = self._calls_tools(body), self._text(body), self._anthropic_usage(body)
        if (read := self._cache_read(body)) is not None:
            usage = {**usage, "cache_read_input_tokens": read, "cache_creation_input_tokens": 2048 - read,
                     "cache_creation": {"ephemeral_5m_input_tokens": 2048 - read, "ephemeral_1h_input_tokens": 0}}
        blocks = []
        if thinking:
            blocks.append({"type": "thinking", "thinking": "Let me think.", "signature": "c2lnbmF0dXJl"})
        if text:
            blocks.append({"type": "text", "text": text})
        if tools:
            blocks.append({"type": "tool_use", "id": f"toolu_{n}", "name": "get_weather",
                           "input": {"city": self._city(body)}})
        stop = "tool_use" if tools else "max_tokens" if "truncated" in _model(body) else "end_turn"
        message = {"id": f"msg_{n}", "type": "message", "role": "assistant", "model": _model(body),
                   "content": blocks, "stop_reason": stop, "stop_sequence": None,
                   "usage": usage}
        if not body.get("stream"):
            return message
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        chunks = [sse({"type": "message_start", "message": start}, "message_start"), sse({"type": "ping"}, "ping")]
        for index, block in enumerate(blocks):
            kind = block["type"]
            empty = {"thinking": {"type": "thinking", "thinking": "", "signature": ""},
                     "text": {"type": "text", "text": ""},
                     "tool_use": {**block, "input": {}}}[kind]
            chunks.append(sse({"type": "content_block_start", "index": index, "content_block": empty},
                              "content_block_start"))
            if kind == "thinking":
                deltas = [{"type": "thinking_delta", "thinking": "Let me "}, {"type": "thinking_delta", "thinking": "think."},
                          {"type": "signature_delta", "signature": block["signature"]}]
            elif kind == "text":
                deltas = [{"type": "text_delta", "text": text[:5]}, {"type": "text_delta", "text": text[5:]}]
            else:
                arguments = json.dumps(block["input"])
                deltas = [{"type": "input_json_delta", "partial_json": part} for part in (arguments[:4], arguments[4:])]
            chunks += [sse({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta")
                       for d in deltas]
            chunks.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        chunks.append(sse({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                           "usage": {"output_tokens": usage["output_tokens"]}}, "message_delta"))
        chunks.append(sse({"type": "message_stop"}, "message_stop"))
        return chunks


if __name__ == "__main__":
    with FakeUpstream() as fake:
        print(fake.url, flush=True)
        threading.Event().wait()

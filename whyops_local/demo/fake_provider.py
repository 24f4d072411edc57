"""A fake OpenAI and Anthropic API on 127.0.0.1 that speaks their wire formats (demo, tests, benchmarks).

Behaviour is picked by the request's model name, so real SDK clients can drive it:
``error-<status>`` answers that status with the provider's error body, ``slow-<seconds>`` waits before
answering, ``gated`` streams its first chunk(s) and then waits for ``FakeUpstream.gate``, ``cut`` drops the
connection in the middle of a stream, ``tools`` answers with tool calls. Every request is kept in
``requests`` and every answer's exact bytes in ``sent``.
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


def _calls_tools(body: dict) -> bool:
    """A model named ``...tools...`` answers with tool calls; ``...tools-once...`` only until it has
    tool results, so an agent loop ends."""
    model = _model(body)
    if "tools-once" in model:
        last = ((body.get("messages") or body.get("input") or [{}]) or [{}])[-1]
        return not (isinstance(last, dict) and (last.get("role") == "tool" or last.get("type") == "function_call_output"))
    return "tools" in model


class FakeUpstream:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.sent: list[bytes] = []
        self.gate = threading.Event()
        self.gate_before = 1  # the index of the chunk a ``gated`` stream holds back until the gate opens
        self.chunk_delay = 0.0
        self._calls = 0
        self._lock = threading.Lock()
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
            return self._calls

    # --- plumbing -----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        anthropic = "anthropic-version" in handler.headers
        self.requests.append(Received(handler.command, handler.path, {k.lower(): v for k, v in handler.headers.items()}, body))
        model = _model(body)
        if match := re.search(r"slow-([\d.]+)", model):
            time.sleep(float(match.group(1)))
        if match := re.search(r"error-(\d+)", model):
            return self._error(handler, int(match.group(1)), anthropic)
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
        # As OpenAI's edge does: a cookie for this client, which must not reach any other.
        self._send(handler, 200, json.dumps(answer).encode(),
                   {"x-request-id": f"req_{self.next_id()}", "set-cookie": f"__cf_bm=fake-{self._calls}; path=/"})

    def _send(self, handler: BaseHTTPRequestHandler, status: int, payload: bytes,
              headers: dict[str, str] | None = None) -> None:
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(payload)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        self.sent.append(payload)
        handler.wfile.write(payload)

    def _stream(self, handler: BaseHTTPRequestHandler, chunks: list[bytes], gated: bool, cut: bool) -> None:
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
                elif index and self.chunk_delay:
                    time.sleep(self.chunk_delay)
                handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    def _error(self, handler: BaseHTTPRequestHandler, status: int, anthropic: bool) -> None:
        if anthropic:
            payload = {"type": "error", "error": {"type": "rate_limit_error" if status == 429 else "api_error",
                                                  "message": f"fake upstream error {status}"}}
        else:
            payload = {"error": {"message": f"fake upstream error {status}", "type": "server_error",
                                 "param": None, "code": None}}
        self._send(handler, status, json.dumps(payload).encode())

    # --- OpenAI -------------------------------------------------------------------------------

    def _chat(self, body: dict) -> Any:
        n = self.next_id()
        tools = _calls_tools(body)
        calls = [{"id": f"call_{n}_{i}", "type": "function",
                  "function": {"name": name, "arguments": json.dumps(args)}}
                 for i, (name, args) in enumerate([("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})])]
        usage = {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132,
                 "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": 0}}
        head = {"id": f"chatcmpl-{n}", "created": 1700000000, "model": _model(body), "system_fingerprint": "fp_fake"}
        if not body.get("stream"):
            message = {"role": "assistant", "content": None if tools else "Hello world", "refusal": None}
            if tools:
                message["tool_calls"] = calls
            return {**head, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if tools else "stop"}]}

        def chunk(delta: dict, finish: str | None = None, **extra: Any) -> bytes:
            choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            return sse({**head, "object": "chat.completion.chunk", "choices": choices, **extra})

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
            chunks += [chunk({"content": "Hello"}), chunk({"content": " world"}), chunk({}, "stop")]
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(sse({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
        return [*chunks, sse("[DONE]")]

    def _responses(self, body: dict) -> Any:
        n = self.next_id()
        tools = _calls_tools(body)
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
        tools = "tools" in _model(body)
        usage = {"input_tokens": 25, "cache_creation_input_tokens": 50, "cache_read_input_tokens": 100,
                 "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 30},
                 "output_tokens": 15, "service_tier": "standard"}
        blocks = []
        if thinking:
            blocks.append({"type": "thinking", "thinking": "Let me think.", "signature": "c2lnbmF0dXJl"})
        blocks.append({"type": "text", "text": "Hello world"})
        if tools:
            blocks.append({"type": "tool_use", "id": f"toolu_{n}", "name": "get_weather", "input": {"city": "Paris"}})
        message = {"id": f"msg_{n}", "type": "message", "role": "assistant", "model": _model(body),
                   "content": blocks, "stop_reason": "tool_use" if tools else "end_turn", "stop_sequence": None,
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
                deltas = [{"type": "text_delta", "text": "Hello"}, {"type": "text_delta", "text": " world"}]
            else:
                arguments = json.dumps(block["input"])
                deltas = [{"type": "input_json_delta", "partial_json": part} for part in (arguments[:4], arguments[4:])]
            chunks += [sse({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta")
                       for d in deltas]
            chunks.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        chunks.append(sse({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                           "usage": {"output_tokens": 15}}, "message_delta"))
        chunks.append(sse({"type": "message_stop"}, "message_stop"))
        return chunks


if __name__ == "__main__":
    with FakeUpstream() as fake:
        print(fake.url, flush=True)
        threading.Event().wait()

"""Relaying one call upstream with httpx, streamed bytes passed on as they arrive, and recording it."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from functools import lru_cache

import httpx
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse

from ..background import in_background
from ..live import messages as live
from .conversations import Conversations
from .headers import redact, returned_headers
from .providers.base import Reassembly, UsageStripper, json_object
from .record import Call, record_soon
from .scrub import Scrubber, secrets_of
from .sse import SSEParser

log = logging.getLogger(__name__)

conversations = Conversations()
_transports: dict[asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport] = {}


def _transport() -> httpx.AsyncHTTPTransport:
    """httpx's connection pool, one per event loop, used without an AsyncClient around it.

    A client would keep the upstream's cookies and send them with every later call, whoever made
    it; add its own default headers (User-Agent: python-httpx) to what the agent sent; and run its
    auth, redirect and cookie machinery on every call, none of which a relay wants.
    """
    loop = asyncio.get_running_loop()
    if loop not in _transports:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=100)
        _transports[loop] = httpx.AsyncHTTPTransport(limits=limits)
    return _transports[loop]


@lru_cache(maxsize=64)
def _parsed(url: str) -> httpx.URL:
    """Upstream URLs repeat: each route's under one base URL. httpx parses a URL in pure Python (~10-40 us)."""
    return httpx.URL(url)


@lru_cache(maxsize=1)
def scrubber() -> Scrubber:
    """The server's secrets (proxy/scrub.py), taken out of everything relayed back or recorded."""
    return Scrubber(secrets_of([settings.OPENAI_API_KEY, settings.ANTHROPIC_API_KEY],
                               [settings.WHYOPS_OPENAI_BASE_URL, settings.WHYOPS_ANTHROPIC_BASE_URL]))


class _SetCookies(dict):
    """Upstream's ``Set-Cookie`` values, each sent as a header of its own and as it came.

    A Django response keeps one value per header name, but sends each of its ``cookies`` as its own
    ``Set-Cookie`` line (``cookie.output(header="")``): two cookies set upstream must stay two."""

    def __init__(self, values: list[str]) -> None:
        super().__init__((index, _RawCookie(value)) for index, value in enumerate(values))


class _RawCookie(str):
    def output(self, header: str = "") -> str:
        return str(self)


def _with_ids(response: HttpResponse, call: Call) -> HttpResponse:
    response["X-Trace-ID"] = call.trace_id
    response["X-Thread-ID"] = call.trace_id
    return response


def _abandoned(call: Call) -> None:
    """The client hung up before it had its answer (the view is being cancelled): the call is still recorded."""
    call.error = "The client disconnected before the upstream answered"
    call.finish()
    if call.api.recorded:
        record_soon(call)


def _failure(call: Call, status: int, kind: str, message: str) -> HttpResponse:
    """A provider-shaped error of the proxy's own (upstream unreachable, too slow), recorded as such."""
    message = scrubber().text(message)  # it may name the upstream URL, userinfo and all
    call.status, call.error = status, message
    call.response_body = json.dumps(call.api.error_body(kind, message)).encode()
    call.finish()
    if call.api.recorded:
        record_soon(call)
    return _with_ids(HttpResponse(call.response_body, status=status, content_type="application/json"), call)


class _Meanwhile:
    """Runs ``work`` once the request is sent, while upstream works on it (httpx's ``trace`` extension
    says when); or, if it never was sent, once that is known."""

    def __init__(self, work: Callable[[], None]) -> None:
        self.work: Callable[[], None] | None = work

    async def on_trace(self, event: str, info: dict) -> None:
        if event == "http11.send_request_body.complete":
            self.run()

    def run(self) -> None:
        if self.work is not None:
            work, self.work = self.work, None
            work()


async def relay(call: Call, url: str, headers: dict[str, str], streamed: bool,
                meanwhile: Callable[[], None], asking_usage: bytes | None = None) -> HttpResponse:
    """Relay the call; ``meanwhile`` is the caller's work that can wait until the request is sent.

    ``asking_usage``: the request body as sent upstream instead, asking for a stream's usage, which
    is then taken out of what the client gets (``Api.asking_for_usage``).

    Upstream has WHYOPS_PROXY_TIMEOUT for its first byte (a stream's first chunk included), then
    a stream WHYOPS_PROXY_STREAM_TIMEOUT for each read, a plain answer WHYOPS_PROXY_TIMEOUT for its body."""
    first_byte = settings.WHYOPS_PROXY_TIMEOUT
    timeout = settings.WHYOPS_PROXY_STREAM_TIMEOUT if streamed else first_byte
    waiting = _Meanwhile(meanwhile)
    request = httpx.Request(call.method, _parsed(url), headers=headers,
                            content=(asking_usage or call.request_body) if call.method == "POST" else None,
                            extensions={"timeout": httpx.Timeout(timeout, connect=min(timeout, 30)).as_dict(),
                                        "trace": waiting.on_trace})
    first: bytes | None = None
    upstream = None
    try:
        # A plain call's first byte is bounded by httpx's read timeout, the same.
        async with asyncio.timeout(first_byte if streamed else None):
            upstream = await _transport().handle_async_request(request)
            upstream.request = request
            sse = upstream.headers.get("content-type", "").startswith("text/event-stream")
            reassembly = call.api.stream() if sse else None
            if reassembly is not None:
                chunks = upstream.aiter_bytes()
                first = await anext(chunks, b"")
    except (TimeoutError, httpx.TimeoutException):
        _close_soon(upstream)
        waiting.run()
        return _failure(call, 504, "timeout", f"The upstream {url} did not answer within {first_byte:g} s")
    except httpx.HTTPError as exc:
        _close_soon(upstream)
        waiting.run()
        return _failure(call, 502, "upstream_unreachable", f"Could not reach the upstream {url}: {exc!r}")
    except asyncio.CancelledError:
        _close_soon(upstream)
        waiting.run()
        _abandoned(call)
        raise
    waiting.run()  # already run, unless the request went out some other way than HTTP/1.1's
    call.ttfb_ms = call.elapsed_ms()
    call.status = upstream.status_code
    scrub = scrubber()
    returned = [(name, scrub.text(value)) for name, value in upstream.headers.multi_items()]
    call.response_headers = redact(returned)
    passed_headers = returned_headers(returned)
    if reassembly is not None:
        stripper = call.api.usage_stripper() if asking_usage is not None else None
        relayed = _first_then(first, chunks)
        response = StreamingHttpResponse(_stream(upstream, scrub.stream(relayed) if scrub else relayed,
                                                 call, reassembly, stripper), status=upstream.status_code)
    else:
        body = await _plain(call, upstream, url, timeout)
        if isinstance(body, HttpResponse):  # the proxy's own failure
            return body
        response = HttpResponse(body, status=upstream.status_code)
    return _with_ids(_with_headers(response, passed_headers), call)


async def _plain(call: Call, upstream: httpx.Response, url: str, timeout: float) -> bytes | HttpResponse:
    """A plain (not streamed) answer's body, read whole and recorded; or the failure to answer instead."""
    body = None
    try:
        async with asyncio.timeout(timeout):  # the whole body; httpx's read timeout is per read
            body = await upstream.aread()
    except (TimeoutError, httpx.TimeoutException):
        return _failure(call, 504, "timeout", f"The upstream {url} did not finish within {timeout:g} s")
    except httpx.HTTPError as exc:
        return _failure(call, 502, "upstream_unreachable", f"The upstream {url} failed: {exc!r}")
    except asyncio.CancelledError:
        _abandoned(call)
        raise
    finally:
        if body is None:  # failed or cancelled (the client hung up): close without waiting here
            in_background(upstream.aclose())
    await upstream.aclose()  # read to the end, this only hands the connection back to the pool
    body = scrubber().bytes(body)
    call.response_body = body
    call.finish()
    if call.api.recorded:
        answer = json_object(body)
        if answer is None and call.status < 300:
            kind = upstream.headers.get("content-type") or "no content type"
            call.error = f"The upstream answered {call.status} with a body that is not a JSON object ({kind})"
        _answered(call, answer)
        record_soon(call)
    return body


def _with_headers(response: HttpResponse, passed: list[tuple[str, str]]) -> HttpResponse:
    cookies = [value for name, value in passed if name.lower() == "set-cookie"]
    for name, value in passed:
        if name.lower() != "set-cookie":
            response[name] = value
    if cookies:
        response.cookies = _SetCookies(cookies)
    return response


def _close_soon(upstream: httpx.Response | None) -> None:
    if upstream is not None:
        in_background(upstream.aclose())


async def _first_then(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


def _answered(call: Call, response: dict | None) -> None:
    call.response = response
    if response is not None and call.status is not None and call.status < 300 and call.history is not None:
        conversations.remember(call.history, call.api.answer(response), call.trace_id, response.get("id"))


async def _stream(upstream: httpx.Response, chunks: AsyncIterator[bytes], call: Call, reassembly: Reassembly,
                  stripper: UsageStripper | None) -> AsyncIterator[bytes]:
    parser = SSEParser()
    recorded = False
    events = 0
    live.stream_started(call.trace_id)
    try:
        async for chunk in chunks:
            call.add_chunk(chunk)
            for sse in parser.feed(chunk):
                events += 1
                reassembly.feed(sse)
            live.call_streamed(call, reassembly.text)
            if reassembly.done and not recorded:
                # Queued before the end marker is passed on: the OpenAI SDK hangs up as soon as it
                # has read "[DONE]", and Django then cancels this generator.
                recorded = _record_stream(call, reassembly.response(), interrupted=False)
            if stripper is not None:
                chunk = stripper.feed(chunk)
                if not chunk:
                    continue
            yield chunk
        for sse in parser.close():
            events += 1
            reassembly.feed(sse)
        if stripper is not None and (rest := stripper.close()):
            yield rest
        if not reassembly.done and call.status < 300:
            call.error = (f"The upstream's event stream ended without its end marker ({events} events)"
                          if events else "The upstream's answer holds no events: not the event stream it claims")
    except httpx.HTTPError as exc:
        call.error = scrubber().text(f"The upstream stream failed: {exc!r}")
        # ASGI cannot cut the client's connection, and raising would make the server append an
        # error page to the stream: the client's stream just ends where upstream's did.
        log.warning("upstream stream for trace %s failed: %r", call.trace_id, exc)
    finally:
        if not recorded:
            # The upstream stream ended without its end marker, failed, or the client hung up.
            _record_stream(call, reassembly.response() if events else None,
                           interrupted=call.error is not None or not _exhausted(upstream))
        live.stream_ended(call.trace_id)
        in_background(upstream.aclose())


def _exhausted(upstream: httpx.Response) -> bool:
    return upstream.is_stream_consumed and upstream.is_closed


def _record_stream(call: Call, response: dict | None, interrupted: bool) -> bool:
    call.finish()
    call.interrupted = interrupted
    _answered(call, response)
    record_soon(call)
    return True

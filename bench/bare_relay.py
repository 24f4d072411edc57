"""The least a relay on the proxy's stack can add: an ASGI app on daphne forwarding with httpx, no Django.

bench/proxy.py runs it beside the proxy (``python -m daphne bench.bare_relay:app``, upstream in
``BARE_RELAY_UPSTREAM``) so the proxy's figures can be read against what the stack itself costs.
A plain answer is read whole and sent with its length, a stream passed on chunk by chunk, as the
proxy does; nothing is parsed or recorded.
"""

import os

import httpx

UPSTREAM = os.environ.get("BARE_RELAY_UPSTREAM", "")
HOP_BY_HOP = {b"host", b"content-length", b"connection", b"transfer-encoding", b"keep-alive"}
_transport: httpx.AsyncHTTPTransport | None = None


async def app(scope, receive, send) -> None:
    global _transport
    if scope["type"] != "http":
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    _transport = _transport or httpx.AsyncHTTPTransport()
    request = httpx.Request(scope["method"], UPSTREAM + scope["path"].removeprefix("/proxy/v1"), content=body,
                            headers=[(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP])
    upstream = await _transport.handle_async_request(request)
    headers = [(k, v) for k, v in upstream.headers.raw if k.lower() not in HOP_BY_HOP]
    if not upstream.headers.get("content-type", "").startswith("text/event-stream"):
        answer = await upstream.aread()
        await upstream.aclose()
        await send({"type": "http.response.start", "status": upstream.status_code,
                    "headers": [*headers, (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})
        return
    await send({"type": "http.response.start", "status": upstream.status_code, "headers": headers})
    try:
        async for chunk in upstream.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        await upstream.aclose()
    await send({"type": "http.response.body"})

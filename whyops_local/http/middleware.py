import logging
import re

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from channels.security.websocket import WebsocketDenier
from django.http import HttpRequest

from . import guards

_SLASHES = re.compile(r"/{2,}")
_AFTER_API_BASE = re.compile(r"^/api/{2,}")
GUARDED = "whyops.guarded"  # in an ASGI scope: Guard has checked it, GuardMiddleware need not
logger = logging.getLogger("whyops_local.http")


def collapse_slashes(path: str) -> str:
    """``/api//events/ingest`` -> ``/api/events/ingest``: SDKs join a base URL that ends in "/" with a
    path that starts with one (docs/whyops-protocol.md §1). Shared by the ASGI fast paths and the middleware.

    Under /api/ only right after the base: the rest may be a trace id, agent name or user id, "//" and all."""
    if "//" not in path:
        return path
    return _SLASHES.sub("/", path) if path.startswith("/proxy/") else _AFTER_API_BASE.sub("/api/", path)


class CollapseSlashesMiddleware:
    """Answer ``/api//events/ingest`` like ``/api/events/ingest`` (see collapse_slashes)."""

    sync_capable = async_capable = True  # no thread hop for async views

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        collapsed = collapse_slashes(request.path_info)
        # Only the SDK-facing routes: page URLs carry trace and user ids, which may hold "//".
        if collapsed.startswith(("/api/", "/proxy/")):
            request.path_info = collapsed
        return self.get_response(request)


class Guard:
    """ASGI middleware in front of everything (pages, API, its fast paths, the proxy, websockets): each
    request passes ``guards.check`` first, and an unexpected exception before an answer started becomes
    a logged JSON 500 (a page's: a plain one) instead of the server's HTML."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        websocket = scope["type"] == "websocket"
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        path = collapse_slashes(scope["path"])
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        answer = guards.check(scope.get("method", "GET"), path, scope.get("query_string", b"").decode("latin-1"),
                              headers, scheme, websocket)
        scope = {**scope, GUARDED: True}
        if websocket:
            return await (WebsocketDenier() if answer else self.app)(scope, receive, send)
        if answer:
            return await _send(send, answer)
        started = False

        async def sending(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            logger.exception("Internal server error answering %s %s", scope["method"], scope["path"])
            if not started:
                await _send(send, guards.server_error(path, exc))


async def _send(send, answer: guards.Answer) -> None:
    headers = [(b"content-type", answer.content_type.encode()), (b"content-length", str(len(answer.body)).encode()),
               *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers)]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


class GuardMiddleware:
    """``guards.check`` for requests that did not come through ``Guard`` (the Django test client)."""

    sync_capable = async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if answer := self._answer(request):
            return self._answered(guards.as_response(answer)) if self.is_async else guards.as_response(answer)
        return self.get_response(request)

    async def _answered(self, response):
        return response

    @staticmethod
    def _answer(request: HttpRequest) -> guards.Answer | None:
        if getattr(request, "scope", {}).get(GUARDED):
            return None
        headers = {name.lower(): value for name, value in request.headers.items()}
        return guards.check(request.method, request.path_info, request.META.get("QUERY_STRING", ""), headers,
                            request.scheme)

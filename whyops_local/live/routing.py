from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.urls import path

from .consumers import TraceConsumer, TraceListConsumer

websocket_urlpatterns = [
    path("ws/traces/", TraceListConsumer.as_asgi()),
    path("ws/traces/<path:trace_id>", TraceConsumer.as_asgi()),
]


class SameOriginOnly:
    """Websockets only from this server's own pages: the Origin must name this server's scheme, host and
    port (the Host the browser connected to). ALLOWED_HOSTS alone ignores the port, so any page served
    from another port of the same machine could listen in."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        headers = dict(scope["headers"])
        origin = urlsplit(headers.get(b"origin", b"").decode("latin-1"))
        host = headers.get(b"host", b"").decode("latin-1")
        scheme = "https" if scope.get("scheme") == "wss" else "http"
        if origin.netloc != host or origin.scheme != scheme:
            return await WebsocketDenier()(scope, receive, send)
        return await self.app(scope, receive, send)

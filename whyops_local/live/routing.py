from django.urls import path

from .consumers import TraceConsumer, TraceListConsumer

# Who may connect is decided by http/middleware.py's Guard, in front of every route.
websocket_urlpatterns = [
    path("ws/traces/", TraceListConsumer.as_asgi()),
    path("ws/traces/<path:trace_id>", TraceConsumer.as_asgi()),
]

from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .http import guards
from .http.api import agent_init, api
from .otlp.views import traces as otlp_traces
from .pages.agents import agent_list, agent_page
from .pages.compare import compare_page
from .pages.trace_delete import trace_delete
from .pages.trace_list import trace_list
from .pages.trace_page import trace_page
from .pages.users import user_list, user_page
from .proxy import views as proxy

proxy_agent_init = csrf_exempt(require_POST(agent_init))

_proxy_routes = {
    "chat/completions": proxy.CHAT,
    "responses": proxy.RESPONSES,
    "embeddings": proxy.EMBEDDINGS,
    "models": proxy.MODELS,
    "messages": proxy.MESSAGES,
    "messages/count_tokens": proxy.COUNT_TOKENS,
}

urlpatterns = [
    path("api/", api.urls),
    path("api/exchanges/<int:pk>", proxy.exchange),
    path("api/exchanges/<int:pk>/request", proxy.exchange_request),
    path("api/exchanges/<int:pk>/response", proxy.exchange_response),
    # The SDK's fallback for agent registration, on the proxy base URL (docs/whyops-protocol.md §3).
    path("proxy/v1/agents/init", proxy_agent_init),
    path("proxy/agents/init", proxy_agent_init),
    # OTLP/HTTP's path, at the root: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:8000 works unchanged.
    path("v1/traces", otlp_traces),
    # Pages. Trace ids and user ids may hold "/", so they take the rest of the path.
    path("", trace_list, name="trace_list"),
    path("delete-trace", trace_delete, name="trace_delete"),
    path("traces/<path:trace_id>", trace_page, name="trace"),
    path("agents/", agent_list, name="agent_list"),
    path("agents/<path:name>/", agent_page, name="agent"),
    path("users/", user_list, name="user_list"),
    path("users/<path:user_id>/", user_page, name="user"),
    path("compare/", compare_page, name="compare"),
    # Each proxy route with and without /v1: sdk.openai() sets a base URL without it (docs/whyops-protocol.md §5).
    *[path(f"proxy/{prefix}{route}", proxy.proxy, {"route": target})
      for route, target in _proxy_routes.items() for prefix in ("v1/", "")],
]

# On API routes JSON, never Django's HTML; pages keep Django's own.
handler400, handler403 = guards.bad_request, guards.permission_denied
handler404, handler500 = guards.not_found, guards.internal_error

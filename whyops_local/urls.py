from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .api import agent_init, api
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
    # The SDK's fallback for agent registration, on the proxy base URL (protocol section 3).
    path("proxy/v1/agents/init", proxy_agent_init),
    path("proxy/agents/init", proxy_agent_init),
    # Each proxy route with and without /v1: sdk.openai() sets a base URL without it (protocol section 5).
    *[path(f"proxy/{prefix}{route}", proxy.proxy, {"route": target})
      for route, target in _proxy_routes.items() for prefix in ("v1/", "")],
]

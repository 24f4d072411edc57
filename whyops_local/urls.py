from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .api import agent_init, api

proxy_agent_init = csrf_exempt(require_POST(agent_init))

urlpatterns = [
    path("api/", api.urls),
    # The SDK's fallback for agent registration, on the proxy base URL (protocol section 3).
    path("proxy/v1/agents/init", proxy_agent_init),
    path("proxy/agents/init", proxy_agent_init),
]

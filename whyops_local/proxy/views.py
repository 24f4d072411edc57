"""The proxy's routes: thin async views that pick the upstream, the trace and the credential."""

import functools
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from ..domain.schemas import CONTROL_CHARACTERS, Invalid
from ..http.guards import error_response, read_body
from ..live import messages as live
from ..models import Exchange
from .conversations import History
from .headers import redact, upstream_headers
from .providers import anthropic, openai
from .providers.base import Api, json_or_none
from .record import Call
from .relay import conversations, relay


@dataclass(frozen=True)
class Route:
    api: Api
    method: str
    upstream_path: str  # after the provider's base URL


CHAT = Route(openai.CHAT, "POST", "/chat/completions")
RESPONSES = Route(openai.RESPONSES, "POST", "/responses")
EMBEDDINGS = Route(openai.EMBEDDINGS, "POST", "/embeddings")
MODELS = Route(openai.PASSTHROUGH, "GET", "/models")
MESSAGES = Route(anthropic.MESSAGES, "POST", "/v1/messages")
COUNT_TOKENS = Route(anthropic.PASSTHROUGH, "POST", "/v1/messages/count_tokens")
ANTHROPIC_MODELS = Route(anthropic.PASSTHROUGH, "GET", "/v1/models")


def _base_url(api: Api) -> str:
    return settings.WHYOPS_ANTHROPIC_BASE_URL if api.provider == anthropic.PROVIDER else settings.WHYOPS_OPENAI_BASE_URL


def _server_key(api: Api) -> str | None:
    return settings.ANTHROPIC_API_KEY if api.provider == anthropic.PROVIDER else settings.OPENAI_API_KEY


def _points_here(url: str, request: HttpRequest) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    here = {"127.0.0.1", "localhost", "::1", "0.0.0.0", request.get_host().rsplit(":", 1)[0].strip("[]").lower()}
    return (parts.hostname or "").lower() in here and str(port) == str(request.META.get("SERVER_PORT"))


def _refusal(api: Api, status: int, kind: str, message: str) -> JsonResponse:
    return JsonResponse(api.error_body(kind, message), status=status)


def _header_problem(request: HttpRequest, trace_id: str | None, agent: str) -> str | None:
    """What is wrong with our own headers, which become the trace's and agent's ids; None if nothing."""
    if trace_id and len(trace_id) > 128:
        return "X-Trace-ID is longer than 128 characters"
    for name, value in (("X-Trace-ID", trace_id), ("X-Agent-Name", agent),
                        ("X-External-User-Id", request.headers.get("X-External-User-Id"))):
        if value and CONTROL_CHARACTERS.search(value):
            return f"{name} must not contain control characters"
    return None


def _while_upstream_works(call: Call, request: HttpRequest, api: Api, body: dict | None) -> None:
    """What the call needs only once upstream answers: done meanwhile, not before calling it.

    Reducing and hashing an agent's history took 0.1-0.3 ms of the event loop per call (33 KB).
    """
    call.request_headers = redact(request.headers.items())
    if api.recorded:
        call.history = History(call.agent, api.conversation(body))
    if not call.trace_id:
        continued = conversations.find(call.history, api.previous_id(body)) if call.history else None
        call.trace_id = continued or str(uuid.uuid4())
    if api.recorded:  # pending on its trace's open pages until it is recorded
        live.call_started(call, call.trace_id, body.get("model"), call.started_at)


async def _relayed(call: Call, *args, **kwargs) -> HttpResponse:
    try:
        return await relay(call, *args, **kwargs)
    except BaseException:
        live.call_ended(call)  # cancelled (the client hung up) before it could be recorded
        raise


@csrf_exempt
async def proxy(request: HttpRequest, route: Route) -> HttpResponse:
    if route is MODELS and "anthropic-version" in request.headers:
        route = ANTHROPIC_MODELS  # both SDKs list models at /v1/models
    api = route.api
    if request.method != route.method:
        return HttpResponseNotAllowed([route.method])
    try:
        raw = read_body(request)
    except Invalid as exc:
        return _refusal(api, exc.status, "invalid_request_error", exc.error)
    body = json_or_none(raw) if route.method == "POST" else None
    if route.method == "POST" and not isinstance(body, dict):
        return _refusal(api, 400, "invalid_request_error", "The request body is not a JSON object")
    query = request.META.get("QUERY_STRING")
    url = _base_url(api) + route.upstream_path + (f"?{query}" if query else "")
    if _points_here(url, request):
        variable = "WHYOPS_ANTHROPIC_BASE_URL" if api.provider == anthropic.PROVIDER else "WHYOPS_OPENAI_BASE_URL"
        return _refusal(api, 502, "proxy_loop", f"{variable}={_base_url(api)} points back at this server; "
                                                f"set it to the provider's API (or unset it for the default)")
    agent = request.headers.get("X-Agent-Name") or "default"
    trace_id = request.headers.get("X-Trace-ID") or request.headers.get("X-Thread-ID")
    if problem := _header_problem(request, trace_id, agent):
        return _refusal(api, 400, "invalid_request_error", problem)
    call = Call(
        api=api, method=route.method, path=request.get_full_path(), trace_id=trace_id or "", agent=agent[:255],
        user=request.headers.get("X-External-User-Id") or None, request_headers={}, request_body=raw, body=body,
        started_at=timezone.now(),
    )

    headers = upstream_headers(request.headers, api.provider, _server_key(api), settings.WHYOPS_API_KEY)
    streamed = bool(body and body.get("stream"))
    # Most frameworks stream without asking for usage: asked for here, so every streamed call has a cost.
    asking_usage = api.asking_for_usage(body, raw) if streamed and settings.WHYOPS_PROXY_STREAM_USAGE else None
    return await _relayed(call, url, headers, streamed=streamed, asking_usage=asking_usage,
                          meanwhile=functools.partial(_while_upstream_works, call, request, api, body))


def exchange(request: HttpRequest, pk: int) -> JsonResponse:
    """The raw exchange behind a proxied event (its ``exchangeId``), credentials already redacted."""
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    found = Exchange.objects.filter(pk=pk).first()
    if found is None:
        return error_response(404, f"No exchange with id {pk}")
    return JsonResponse(found.to_dict())


def _raw_body(request: HttpRequest, pk: int, side: str) -> HttpResponse:
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    found = Exchange.objects.filter(pk=pk).first()
    if found is None:
        return error_response(404, f"No exchange with id {pk}")
    headers = found.request_headers if side == "request" else found.response_headers
    body = found.request_bytes() if side == "request" else found.response_bytes()
    kind = next((v for k, v in (headers or {}).items() if k.lower() == "content-type"), "application/octet-stream")
    # The bytes as received, shown as text by nobody: they are untrusted.
    return HttpResponse(body, content_type=kind, headers={"Content-Disposition": "attachment",
                                                         "X-Content-Type-Options": "nosniff"})


def exchange_request(request: HttpRequest, pk: int) -> HttpResponse:
    """The raw request body of an exchange, byte for byte."""
    return _raw_body(request, pk, "request")


def exchange_response(request: HttpRequest, pk: int) -> HttpResponse:
    """The raw response body of an exchange, byte for byte (a stream's: the SSE bytes as relayed)."""
    return _raw_body(request, pk, "response")

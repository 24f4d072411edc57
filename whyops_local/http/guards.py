"""What every route checks before it does anything, and the one shape of a refusal,
``{"error": ..., "details": [...]}``.

``check`` decides for every request and websocket (http/middleware.py's ``Guard`` asks it first, under
ASGI; ``GuardMiddleware`` under the Django test client): no web page of another origin may write, use
the proxy or listen in; ingest and agent registration take JSON only; and with ``WHYOPS_API_KEY`` set,
every route but the static files needs the key (a header for API clients, a cookie for browsers, got
from the ``?token=`` link the server prints at start-up)."""

import hashlib
import hmac
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.cookie import parse_cookie
from django.views import defaults

from ..domain.schemas import Invalid
from ..storage.faults import read_fault

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The SDK-facing routes whose bodies are JSON: a browser can send text/plain, form or beacon bodies to
# another origin without asking (no CORS preflight), but not application/json.
JSON_ONLY_PATHS = frozenset({"/api/events/ingest", "/api/entities/init", "/proxy/v1/agents/init", "/proxy/agents/init"})
API_PREFIXES = ("/api/", "/proxy/", "/v1/", "/ws/")
PAGE_PREFIXES = ("/api/docs",)  # under /api/ but read by people: refused with a page
OPEN_PREFIXES = ("/static/",)
TOKEN_PARAMETER = "token"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Answer:
    """What the guard answers instead of the route."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def check(method: str, path: str, query: str, headers: Mapping[str, str], scheme: str,
          websocket: bool = False) -> Answer | None:
    """``None`` when the request may go on, else the answer that refuses it. ``headers``: lower-case names;
    ``path`` with its slashes collapsed; ``scheme``: http or https."""
    if path.startswith(OPEN_PREFIXES):
        return None
    writes = websocket or method not in SAFE_METHODS or path.startswith("/proxy/")
    if writes and _from_another_origin(headers, scheme, websocket):
        return refusal(path, 403, "Requests from web pages of other origins are refused on this route",
                       [{"field": "Origin", "code": "cross_origin",
                         "message": "only this server's own pages may write, use the proxy or listen"}])
    if key := settings.WHYOPS_API_KEY:
        token = dict(parse_qsl(query)).get(TOKEN_PARAMETER) if TOKEN_PARAMETER in query else None
        if token is not None and method == "GET" and not websocket:
            return _sign_in(path, query, token, key, headers, scheme)
        if not _has_key(headers, key):
            return refusal(path, 401, "Missing or wrong API key: send 'Authorization: Bearer <WHYOPS_API_KEY>' "
                                      "(or X-API-Key), or open the ?token= link the server printed",
                           headers=[("WWW-Authenticate", "Bearer")])
    if method == "POST" and path in JSON_ONLY_PATHS and _has_body(headers) and not _is_json(headers.get("content-type", "")):
        given = headers.get("content-type") or "none"
        return refusal(path, 415, "Unsupported Content-Type: send application/json",
                       [{"field": "Content-Type", "code": "unsupported", "message": f"{given}: send application/json"}])
    return None


def _given_key(headers: Mapping[str, str]) -> str:
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get("x-api-key", "")


def _has_key(headers: Mapping[str, str], key: str) -> bool:
    if given := _given_key(headers):
        return hmac.compare_digest(given.encode(), key.encode())
    cookie = parse_cookie(headers.get("cookie", "")).get(_cookie_name(headers))
    return bool(cookie) and hmac.compare_digest(cookie.encode(), _cookie_value(key).encode())


def _cookie_name(headers: Mapping[str, str]) -> str:
    # Browsers send a host's cookies to all its ports: one name per port keeps two servers' apart.
    port = urlsplit(f"//{headers.get('host', '')}").port if ":" in headers.get("host", "") else None
    return f"whyops_token_{port or 'default'}"


def _cookie_value(key: str) -> str:
    # Not the key itself: the cookie signs a browser in here, it does not hand out the key.
    return hmac.new(settings.SECRET_KEY.encode(), key.encode(), hashlib.sha256).hexdigest()


def _sign_in(path: str, query: str, token: str, key: str, headers: Mapping[str, str], scheme: str) -> Answer:
    """``?token=<key>``: set the browser's cookie and send it on to the same address without the token."""
    if not hmac.compare_digest(token.encode(), key.encode()):
        return refusal(path, 401, "Wrong token: it is the server's WHYOPS_API_KEY")
    rest = urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != TOKEN_PARAMETER])
    cookie = (f"{_cookie_name(headers)}={_cookie_value(key)}; Path=/; HttpOnly; SameSite=Strict"
              + ("; Secure" if scheme == "https" else ""))
    return Answer(302, b"", "text/plain", [("Location", path + (f"?{rest}" if rest else "")), ("Set-Cookie", cookie),
                                           ("Cache-Control", "no-store")])


def _origin(scheme: str, netloc: str) -> tuple[str, str | None, int | None] | None:
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        return scheme, parts.hostname, parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None


def _from_another_origin(headers: Mapping[str, str], scheme: str, websocket: bool) -> bool:
    """Whether a browser sent this for a page of another origin (scheme, host and port).

    Browsers send Origin with every cross-origin POST (fetch in no-cors mode, sendBeacon and forms too)
    and every websocket, and Sec-Fetch-Site with every request; SDKs and curl send neither. A page on
    another port of the same host is "same-site", so only "same-origin" (or "none": typed by the user) passes."""
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = headers.get("origin")
    if origin is None:
        return websocket
    parts = urlsplit(origin)
    ours = _origin(scheme, headers.get("host", ""))
    return ours is None or _origin(parts.scheme, parts.netloc) != ours


def _has_body(headers: Mapping[str, str]) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _is_page(path: str) -> bool:
    return path.startswith(PAGE_PREFIXES) or not path.startswith(API_PREFIXES)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>whyops-local: {title}</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 42em; margin: 4em auto; padding: 0 1em; line-height: 1.5">
<h1>{title}</h1>
<p>{message}</p>
</body></html>
"""
_SIGN_IN = ("This server was started with <code>WHYOPS_API_KEY</code>, so its pages need the key. Open the link "
            "it printed when it started (it ends in <code>?token=&hellip;</code>), or add "
            "<code>?token=&lt;WHYOPS_API_KEY&gt;</code> to this page's address: the browser then keeps a cookie for "
            "this server. API clients send <code>Authorization: Bearer &lt;WHYOPS_API_KEY&gt;</code>.")


_TITLES = {500: "Server error", 503: "The database is unavailable"}


def refusal(path: str, status: int, error: str, details: list | None = None,
            headers: list[tuple[str, str]] | None = None) -> Answer:
    """A refusal as its route's kind answers one: JSON for the API, proxy and OTLP, a small page for pages."""
    if not _is_page(path):
        return Answer(status, JsonResponse({"error": error, "details": details or []}).content, headers=headers or [])
    title, message = ("The key is needed", _SIGN_IN) if status == 401 else (_TITLES.get(status, "Refused"), escape(error))
    page = _PAGE.format(title=title, message=message).encode()
    return Answer(status, page, "text/html; charset=utf-8", [("Cache-Control", "no-store")])


MESSAGE_500 = "Internal server error: the server's log has the details"


def server_error(path: str, exc: BaseException | None) -> Answer:
    """The answer to an unexpected exception (logged where it was caught); never a traceback.

    The SQLite file deleted or replaced under a running server is no fault of the route that read it:
    every read fails alike, so it is told here, once for all of them, as a 503 saying what to do."""
    if fault := read_fault(exc):
        return refusal(path, fault.status, str(fault))
    return refusal(path, 500, MESSAGE_500)


def _json_on_api_routes(status: int, error: str, page_view):
    """A handler (Django's handler404 and kin) that answers JSON on API routes, ``page_view`` on pages."""

    def view(request: HttpRequest, exception: Exception) -> HttpResponse:
        if _is_page(request.path_info):
            return page_view(request, exception)
        return as_response(refusal(request.path_info, status, error))

    return view


bad_request = _json_on_api_routes(400, "Bad request", defaults.bad_request)
permission_denied = _json_on_api_routes(403, "Forbidden", defaults.permission_denied)
not_found = _json_on_api_routes(404, "No such route", defaults.page_not_found)


def internal_error(request: HttpRequest) -> HttpResponse:
    """handler500, as ``Guard`` answers: Django calls it while it handles the exception, which
    ``sys.exc_info`` then holds."""
    return as_response(server_error(request.path_info, sys.exc_info()[1]))


def as_response(answer: Answer) -> HttpResponse:
    response = HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
    for name, value in answer.headers:
        response[name] = value
    return response


def too_large() -> Invalid:
    limit = settings.WHYOPS_MAX_BODY_BYTES
    return Invalid(
        [{"field": "body", "message": f"larger than {limit} bytes", "code": "too_large"}],
        error=f"Request body too large (limit {limit} bytes, WHYOPS_MAX_BODY_BYTES)",
        status=413,
    )


def error_response(status: int, error: str, details: list | None = None, extra: dict | None = None) -> JsonResponse:
    return JsonResponse({"error": error, "details": details or [], **(extra or {})}, status=status)


def read_body(request: HttpRequest) -> bytes:
    """The request's body; raises ``Invalid`` (413) past WHYOPS_MAX_BODY_BYTES."""
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large() from None
    if len(body) > settings.WHYOPS_MAX_BODY_BYTES:
        raise too_large()
    return body

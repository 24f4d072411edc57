"""What every WhyOps route checks before it does anything: the API key, the body's size; and the one
shape of a refusal, ``{"error": ..., "details": [...]}``. Used by the API, its ASGI fast path and the proxy."""

import hmac
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse

from ..domain.schemas import Invalid


def api_key_error(headers: Mapping[str, str]) -> str | None:
    """Why the request may not go on when the server has WHYOPS_API_KEY (docs/whyops-protocol.md §2), else None."""
    expected = settings.WHYOPS_API_KEY
    if not expected:
        return None
    auth = headers.get("authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get("x-api-key", "")
    if given and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return "Missing or wrong API key: send 'Authorization: Bearer <WHYOPS_API_KEY>'"


def too_large() -> Invalid:
    limit = settings.WHYOPS_MAX_BODY_BYTES
    return Invalid(
        [{"field": "body", "message": f"larger than {limit} bytes", "code": "too_large"}],
        error=f"Request body too large (limit {limit} bytes, WHYOPS_MAX_BODY_BYTES)",
        status=413,
    )


def error_response(status: int, error: str, details: list | None = None) -> JsonResponse:
    return JsonResponse({"error": error, "details": details or []}, status=status)


def key_refusal(request: HttpRequest) -> JsonResponse | None:
    error = api_key_error(request.headers)
    return error_response(401, error) if error else None


def read_body(request: HttpRequest) -> bytes:
    """The request's body; raises ``Invalid`` (413) past WHYOPS_MAX_BODY_BYTES."""
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large() from None
    if len(body) > settings.WHYOPS_MAX_BODY_BYTES:
        raise too_large()
    return body

"""The event ingest endpoint, shared by its Django view and its ASGI fast path.

Ingest is the one hot path: an agent sends every step as its own request. Django's ASGI request
cycle (per-request threads for sync middleware and signals) costs a few milliseconds a request
here, ten times what daphne itself needs, so ``POST /api/events/ingest`` is answered by
``IngestFastPath`` straight from ASGI, with the same validation, storage and answers as the
django-ninja view that documents it (and serves the Django test client).
"""

import json
from collections.abc import Mapping

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from ..domain.schemas import Invalid
from ..otlp import views as otlp
from ..storage import writer
from ..storage.faults import Unstored
from .guards import too_large
from .middleware import collapse_slashes

INGEST_PATH = "/api/events/ingest"


async def ingest(body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
    """Status and JSON answer for an ingest request; the events are committed before it returns.

    The body is validated by the writer, beside the database (see ``write_tasks``); the key, origin and
    content type were checked in front of every route (``guards.check``)."""
    try:
        return await writer.ingest(body, headers.get("x-external-user-id") or None)
    except Unstored as exc:  # the client may retry: idempotency keys make that safe
        return exc.status, json.dumps({"error": str(exc), "details": []}).encode()


async def _read_body(receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > settings.WHYOPS_MAX_BODY_BYTES:
            raise too_large()
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send, status: int, body: bytes, content_type: str = "application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _ingest_answer(body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes, str]:
    return *(await ingest(body, headers)), "application/json"


def _ingest_refusal(exc: Invalid, headers: Mapping[str, str]) -> tuple[int, bytes, str]:
    return exc.status, json.dumps(exc.to_dict()).encode(), "application/json"


# path -> (what answers a request, what answers one refused before that: a body too large)
FAST_PATHS = {INGEST_PATH: (_ingest_answer, _ingest_refusal), otlp.OTLP_PATH: (otlp.export, otlp.refusal)}


class IngestFastPath:
    """ASGI middleware answering ``POST /api/events/ingest`` (and ``/v1/traces``, OTLP) itself and
    passing everything else on."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        handlers = scope["type"] == "http" and scope["method"] == "POST" and FAST_PATHS.get(collapse_slashes(scope["path"]))
        if not handlers:
            return await self.app(scope, receive, send)
        answer, refuse = handlers
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        host, _ = split_domain_port(headers.get("host", ""))
        if not validate_host(host, settings.ALLOWED_HOSTS):
            return await self.app(scope, receive, send)  # let Django refuse it the usual way
        try:
            body = await _read_body(receive)
        except Invalid as exc:
            return await _send(send, *refuse(exc, headers))
        except ConnectionAbortedError:
            return None
        await _send(send, *(await answer(body, headers)))

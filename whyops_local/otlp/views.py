"""``POST /v1/traces``: OTLP/HTTP trace export (protobuf or JSON), answered in the request's encoding.

Answered from ASGI by ``http/ingest.py``'s fast path, like event ingest (an exporter sends a request
per batch, or per span with a simple span processor); the Django view serves the test client.
"""

from collections.abc import Mapping

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..domain.schemas import Invalid
from ..http.guards import read_body
from ..storage import writer
from ..storage.faults import Unstored
from . import store
from .decode import encoding_of, error_body

OTLP_PATH = "/v1/traces"
UNAUTHENTICATED, UNAVAILABLE = 16, 14  # google.rpc.Code
# The sizes of uncompressed exports this process may decode itself (``_prepared``): from some 15 chat
# spans to some 450, whose mapping stops the event loop for ~25 ms.
PREPARED_HERE = range(8 * 1024, 256 * 1024)


def refusal(exc: Invalid, headers: Mapping[str, str]) -> tuple[int, bytes, str]:
    return exc.status, *error_body(exc, encoding_of(headers.get("content-type", "")))


def _prepared(body: bytes, encoding: str, content_encoding: str) -> store.Prepared | None:
    """The export decoded, mapped and validated here, or None for the writer to do it.

    The writer stores every export and is their bottleneck: while it works on others, this process
    (idle otherwise) does that part of a large one. 100-span requests from 4 senders: 6,200 -> 8,800
    spans/s (bench/otlp.py); done in a thread, 8,100, the GIL passing back and forth with the event
    loop. With the writer idle, the body goes as it is: one hop less. Raises ``Invalid`` as the writer
    would answer it."""
    compressed = content_encoding.strip().lower() not in ("", "identity")  # its size says little of its spans
    if compressed or len(body) not in PREPARED_HERE or not writer.busy():
        return None
    try:
        return store.prepare(body, encoding, content_encoding)
    except Invalid:
        raise
    except Exception:  # noqa: BLE001  (the writer reads it again, and answers what fails)
        return None


async def export(body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes, str]:
    """Status, body and content type of the answer; the spans are committed before it returns."""
    content_type = headers.get("content-type", "")
    encoding = encoding_of(content_type)
    if encoding is None:
        detail = {"field": "Content-Type", "code": "unsupported",
                  "message": f"{content_type or 'none'}: send application/x-protobuf or application/json"}
        return refusal(Invalid([detail], error="Unsupported Content-Type for OTLP/HTTP", status=415), headers)
    content_encoding = headers.get("content-encoding", "")
    try:
        prepared = _prepared(body, encoding, content_encoding)
    except Invalid as exc:
        return refusal(exc, headers)
    try:
        return await writer.export_otlp(body, encoding, content_encoding, prepared)
    except Unstored as exc:  # the exporter retries a 503; idempotency keys make that safe
        return refusal(Invalid([], error=str(exc), status=exc.status), headers)


@csrf_exempt
@require_POST
async def traces(request: HttpRequest) -> HttpResponse:
    try:
        body = read_body(request)
    except Invalid as exc:
        status, payload, content_type = refusal(exc, request.headers)
    else:
        status, payload, content_type = await export(body, request.headers)
    return HttpResponse(payload, status=status, content_type=content_type)

"""OTLP/HTTP trace export bodies (protobuf or JSON, gzip or not) as plain spans, and the answers (pure).

The messages are ``opentelemetry-proto``'s; OTLP JSON differs from protobuf's own JSON mapping only
in its ids, which are hex rather than base64, so they are converted before ``json_format`` parses it.
"""

import base64
import gzip
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ..domain.schemas import Invalid

PROTOBUF, JSON = "application/x-protobuf", "application/json"
STATUS_ERROR = 2  # Status.STATUS_CODE_ERROR
INVALID_ARGUMENT = 3  # google.rpc.Code


@dataclass
class Span:
    trace_id: str  # hex, as OTLP JSON and every UI spell it
    span_id: str
    parent_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    status_code: int = 0
    status_message: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    where: str = ""  # its place in the request, to name it in errors


def _detail(where: str, message: str, code: str) -> dict[str, str]:
    return {"field": where, "message": message, "code": code}


def encoding_of(content_type: str) -> str | None:
    media = content_type.split(";")[0].strip().lower()
    return media if media in (PROTOBUF, JSON) else None


def inflate(body: bytes, content_encoding: str, limit: int) -> bytes:
    """The body without its Content-Encoding (gzip, deflate or none), refused past ``limit`` bytes."""
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "deflate"):
        raise Invalid([_detail("Content-Encoding", f"unsupported: {coding!r} (gzip, deflate or none)", "unsupported")],
                      error=f"Unsupported Content-Encoding {coding!r}", status=415)
    inflater = zlib.decompressobj(wbits=31 if coding == "gzip" else 15)
    try:
        plain = inflater.decompress(body, limit + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise Invalid([_detail("body", f"not valid {coding}: {exc}", "encoding_invalid")],
                      error=f"Body is not valid {coding}") from None
    if len(plain) > limit:
        raise Invalid([_detail("body", f"larger than {limit} bytes once decompressed", "too_large")],
                      error=f"Request body too large once decompressed (limit {limit} bytes, WHYOPS_MAX_BODY_BYTES)",
                      status=413)
    return plain


def _hex_to_base64(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except ValueError:
        return value  # json_format then says what is wrong with it


def _ids_to_base64(data: Any) -> None:
    for resource_spans in data.get("resourceSpans") or [] if isinstance(data, dict) else []:
        for scope_spans in (resource_spans or {}).get("scopeSpans") or []:
            for span in (scope_spans or {}).get("spans") or []:
                for holder in [span, *(span.get("links") or [])] if isinstance(span, dict) else []:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in holder:
                            holder[key] = _hex_to_base64(holder[key])


def parse_request(body: bytes, encoding: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        if encoding == PROTOBUF:
            request.ParseFromString(body)
        else:
            data = json.loads(body)
            _ids_to_base64(data)
            json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, ValueError, UnicodeDecodeError, TypeError, AttributeError) as exc:
        kind = "protobuf" if encoding == PROTOBUF else "OTLP JSON"
        raise Invalid([_detail("body", f"not a valid {kind} ExportTraceServiceRequest: {exc}", "otlp_invalid")],
                      error=f"Malformed {kind} trace export") from None
    return request


def value(any_value: Any) -> Any:
    """An AnyValue as a Python value."""
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(item) for item in any_value.array_value.values]
    if kind == "kvlist_value":
        return attributes(any_value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(any_value.bytes_value).decode()
    return getattr(any_value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: value(pair.value) for pair in pairs}


def spans(request: ExportTraceServiceRequest) -> list[Span]:
    """Every span of the request; raises ``Invalid`` naming each span without its trace or span id."""
    found, details = [], []
    for r, resource_spans in enumerate(request.resource_spans):
        resource = attributes(resource_spans.resource.attributes)
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            for n, span in enumerate(scope_spans.spans):
                where = f"resourceSpans.{r}.scopeSpans.{s}.spans.{n}"
                if len(span.trace_id) != 16 or not any(span.trace_id):
                    details.append(_detail(f"{where}.traceId", "a span needs a 16-byte, non-zero trace id", "missing"))
                if len(span.span_id) != 8 or not any(span.span_id):
                    details.append(_detail(f"{where}.spanId", "a span needs an 8-byte, non-zero span id", "missing"))
                if details:
                    continue
                found.append(Span(
                    trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                    parent_id=span.parent_span_id.hex() if any(span.parent_span_id) else None,
                    name=span.name, kind=span.kind, start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano or span.start_time_unix_nano,
                    attributes=attributes(span.attributes), resource=resource, scope=scope_spans.scope.name,
                    status_code=span.status.code, status_message=span.status.message,
                    events=[{"name": e.name, "timeNs": e.time_unix_nano, "attributes": attributes(e.attributes)}
                            for e in span.events],
                    where=where,
                ))
    if details:
        raise Invalid(details)
    return found


def _encoded(message: Any, encoding: str) -> bytes:
    if encoding == PROTOBUF:
        return message.SerializeToString()
    return json_format.MessageToJson(message, indent=None).encode()


def export_response(rejected: int = 0, message: str = "", encoding: str = PROTOBUF) -> bytes:
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return _encoded(response, encoding)


def error_body(exc: Invalid, encoding: str | None) -> tuple[bytes, str]:
    """A refusal in the request's encoding: OTLP/HTTP's ``google.rpc.Status`` for protobuf; for JSON
    (and an unknown content type) the API's own error shape, with the Status's code and message beside it."""
    fields = "; ".join(f"{d['field']}: {d['message']}" for d in exc.details)
    message = f"{exc.error} ({fields})" if fields else exc.error
    if encoding == PROTOBUF:
        return status_pb2.Status(code=INVALID_ARGUMENT, message=message).SerializeToString(), PROTOBUF
    return json.dumps({**exc.to_dict(), "code": INVALID_ARGUMENT, "message": message}).encode(), JSON

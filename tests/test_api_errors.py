"""An unexpected exception never answers HTML on an API route (the API, its ASGI fast paths, the proxy, OTLP):
a JSON 500 naming no internals, and the traceback in the server's log, DEBUG off; pages answer a plain 500,
logged too."""

import json
import logging

import pytest
from channels.testing import HttpCommunicator

from whyops_local.asgi import application
from whyops_local.models import TraceQuerySet
from whyops_local.proxy import views as proxy_views
from whyops_local.storage import writer

pytestmark = pytest.mark.django_db(transaction=True)


class Unexpected(Exception):
    pass


def boom(*args, **kwargs):
    raise Unexpected("a bug that escaped every check")


@pytest.fixture
def logged():
    """The records the server logs for unhandled errors (its own loggers and Django's request logger)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append
    loggers = [logging.getLogger(name) for name in ("whyops_local", "django.request")]
    for logger in loggers:
        logger.addHandler(handler)
    yield records
    for logger in loggers:
        logger.removeHandler(handler)


async def call(method: str, path: str, body: bytes = b"", content_type: bytes = b"application/json"):
    communicator = HttpCommunicator(application, method, path, body=body,
                                    headers=[(b"host", b"127.0.0.1:8000"), (b"content-type", content_type)])
    response = await communicator.get_response(timeout=5)
    headers = {name.lower(): value for name, value in response["headers"]}
    return response["status"], headers.get(b"content-type", b"").decode(), response["body"]


def assert_logged_json_500(answer, logged) -> None:
    status, content_type, body = answer
    assert status == 500 and content_type == "application/json"
    assert json.loads(body) == {"error": "Internal server error: the server's log has the details", "details": []}
    assert b"escaped" not in body
    assert any(record.exc_info and record.exc_info[0] is Unexpected for record in logged)


async def test_the_ingest_fast_path(monkeypatch, logged):
    monkeypatch.setattr(writer, "ingest", boom)
    body = json.dumps({"eventType": "user_message", "traceId": "t", "agentName": "a"}).encode()
    assert_logged_json_500(await call("POST", "/api/events/ingest", body), logged)


async def test_the_otlp_fast_path(monkeypatch, logged):
    monkeypatch.setattr(writer, "export_otlp", boom)
    assert_logged_json_500(await call("POST", "/v1/traces", b'{"resourceSpans": []}'), logged)


async def test_the_read_api(monkeypatch, logged):
    monkeypatch.setattr(TraceQuerySet, "filtered", boom)
    assert_logged_json_500(await call("GET", "/api/traces"), logged)


async def test_the_proxy(monkeypatch, logged):
    monkeypatch.setattr(proxy_views, "relay", boom)
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
    assert_logged_json_500(await call("POST", "/proxy/v1/chat/completions", body), logged)


async def test_a_page_answers_a_plain_500_and_logs_it(monkeypatch, logged):
    monkeypatch.setattr(TraceQuerySet, "filtered", boom)
    status, content_type, body = await call("GET", "/")
    assert status == 500 and content_type.startswith("text/html") and b"escaped" not in body
    assert any(record.exc_info and record.exc_info[0] is Unexpected for record in logged)


def test_unhandled_errors_are_logged_to_stderr_with_debug_off(settings):
    assert not settings.DEBUG
    [handler] = [h for h in logging.getLogger("django.request").handlers if type(h) is logging.StreamHandler]
    assert handler.level <= logging.ERROR
    # An upstream 5xx the proxy relayed is no error of the server's: only exceptions are logged.
    relayed = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Bad Gateway: %s", ("/proxy",), None)
    raised = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Internal Server Error: %s", ("/",),
                               (Unexpected, Unexpected(), None))
    assert not handler.filter(relayed) and handler.filter(raised)


@pytest.mark.parametrize("path", ["/api/nope", "/proxy/v1/nope", "/v1/nope", "/api/exchanges/x"])
async def test_an_unknown_api_route_answers_404_json(path):
    status, content_type, body = await call("GET", path)
    assert status == 404 and content_type == "application/json" and json.loads(body)["error"]


async def test_an_unknown_host_on_an_api_route_answers_400_json():
    communicator = HttpCommunicator(application, "GET", "/api/traces", headers=[(b"host", b"evil.example")])
    response = await communicator.get_response(timeout=5)
    assert response["status"] == 400 and json.loads(response["body"])["error"]

"""The ASGI fast path that answers POST /api/events/ingest under the server: same answers as the view."""

import json

import pytest
from channels.testing import HttpCommunicator

from whyops_local.asgi import application
from whyops_local.models import Event

pytestmark = pytest.mark.django_db(transaction=True)
EVENT = {"eventType": "user_message", "traceId": "fast", "agentName": "a"}


async def post(body: bytes, path: str = "/api/events/ingest", host: bytes = b"127.0.0.1:8000", headers=()):
    communicator = HttpCommunicator(application, "POST", path, body=body,
                                    headers=[(b"host", host), (b"content-type", b"application/json"), *headers])
    response = await communicator.get_response(timeout=5)
    is_json = dict(response["headers"]).get(b"content-type", b"").startswith(b"application/json")
    return response["status"], json.loads(response["body"]) if is_json else response["body"]


async def test_it_stores_an_event_and_answers_201():
    status, answer = await post(json.dumps(EVENT).encode())
    assert status == 201 and answer["status"] == "saved" and answer["stepId"] == 1
    assert await Event.objects.filter(pk=answer["id"]).aexists()


async def test_double_slashes_from_a_trailing_slash_base_url_are_the_same_route():
    status, _ = await post(json.dumps(EVENT).encode(), path="/api//events/ingest")
    assert status == 201


async def test_bad_json_and_bad_fields_get_the_same_errors_as_the_view():
    assert await post(b"{nope") == (400, {"error": "Malformed JSON: Expecting property name enclosed in double "
                                                   "quotes: line 1 column 2 (char 1)",
                                          "details": [{"field": "body", "code": "json_invalid",
                                                       "message": "Expecting property name enclosed in double "
                                                                  "quotes: line 1 column 2 (char 1)"}]})
    status, answer = await post(json.dumps([EVENT, {**EVENT, "eventType": "tool_call_request"}]).encode())
    assert status == 400 and [d["field"] for d in answer["details"]] == ["1.metadata.tool"]
    assert not await Event.objects.aexists()


async def test_an_oversized_body_gets_413_before_it_is_all_read(settings):
    settings.WHYOPS_MAX_BODY_BYTES = 100
    status, answer = await post(json.dumps({**EVENT, "content": "x" * 200}).encode())
    assert status == 413 and answer["details"][0]["field"] == "body"
    assert not await Event.objects.aexists()


async def test_the_server_key_is_required_when_set(settings):
    settings.WHYOPS_API_KEY = "YOPS-k"
    assert (await post(json.dumps(EVENT).encode()))[0] == 401
    assert (await post(json.dumps(EVENT).encode(), headers=[(b"authorization", b"Bearer YOPS-k")]))[0] == 201


async def test_an_unknown_host_is_refused_as_django_would():
    status, _ = await post(json.dumps(EVENT).encode(), host=b"evil.example")
    assert status == 400
    assert not await Event.objects.aexists()


async def test_a_writer_that_stopped_mid_request_gets_a_503_the_client_can_retry(monkeypatch):
    from whyops_local.storage import writer

    async def stopped(body, user):
        raise writer.WriterStopped("the writer process stopped before answering")

    monkeypatch.setattr(writer, "ingest", stopped)
    status, answer = await post(json.dumps(EVENT).encode())
    assert status == 503 and "writer process stopped" in answer["error"]

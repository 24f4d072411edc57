"""Daphne's requests under this app skip Twisted's form parsing, which daphne never reads."""

from types import SimpleNamespace

from daphne import http_protocol

import whyops_local.asgi  # noqa: F401  (sets the server up as runserver does)
from whyops_local.http.daphne_requests import WebRequest


def test_the_server_builds_requests_that_leave_form_bodies_to_the_app():
    assert http_protocol.WebRequest is WebRequest
    connected = []
    channel = SimpleNamespace(getPeer=lambda: None, getHost=lambda: None, transport=None,
                              factory=SimpleNamespace(server=SimpleNamespace(protocol_connected=connected.append)))
    request = http_protocol.WebRequest(channel)
    assert request._parsePOSTFormSubmission is False and connected == [request]

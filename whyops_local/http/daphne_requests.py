"""Daphne's requests, without Twisted's parsing of form bodies that daphne never reads, and with a deadline
for their bodies.

Twisted parses url-encoded and multipart POST bodies into ``request.args`` unless told not to (its
``parsePOSTFormSubmission``). Daphne hands the raw body to the ASGI app and never reads ``args``,
but does not say so: each POST paid for an email-package parse of its Content-Type (the server's
main thread went from ~630 to ~495 us of CPU per single-event ingest request without it, measured),
and a multipart upload would be parsed in memory for nothing.

Daphne calls the app only once the whole body is in, and Twisted's idle timeout restarts with every
byte: a client sending one byte a second would hold its connection (and its buffer) forever. A body not
received within WHYOPS_BODY_TIMEOUT seconds of its headers is answered 408 and the connection closed.
"""

import json

from daphne import http_protocol
from django.conf import settings


class WebRequest(http_protocol.WebRequest):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)
        self._body_deadline = None

    def gotLength(self, length: int | None) -> None:
        super().gotLength(length)
        if length != 0:  # None: a chunked body
            self._body_deadline = self.channel.callLater(settings.WHYOPS_BODY_TIMEOUT, self._body_too_slow)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self._no_deadline()
        super().requestReceived(command, path, version)

    def connectionLost(self, reason) -> None:
        self._no_deadline()
        super().connectionLost(reason)

    def _no_deadline(self) -> None:
        if self._body_deadline is not None and self._body_deadline.active():
            self._body_deadline.cancel()
        self._body_deadline = None

    def _body_too_slow(self) -> None:
        """Answered on the connection itself: the request is still being read, Twisted has no response for it."""
        self._body_deadline = None
        limit = settings.WHYOPS_BODY_TIMEOUT
        body = json.dumps({"error": f"Request body not received within {limit:g} s (WHYOPS_BODY_TIMEOUT)",
                           "details": [{"field": "body", "code": "timeout",
                                        "message": f"not received within {limit:g} s"}]}).encode()
        transport = self.channel.transport
        transport.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        transport.loseConnection()


def use() -> None:
    # daphne's HTTPFactory.buildProtocol looks its request class up in its module on every connection.
    if http_protocol.WebRequest is not WebRequest:
        http_protocol.WebRequest = WebRequest

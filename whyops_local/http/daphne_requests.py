"""Daphne's requests, without Twisted's parsing of form bodies that daphne never reads.

Twisted parses url-encoded and multipart POST bodies into ``request.args`` unless told not to (its
``parsePOSTFormSubmission``). Daphne hands the raw body to the ASGI app and never reads ``args``,
but does not say so: each POST paid for an email-package parse of its Content-Type (the server's
main thread went from ~630 to ~495 us of CPU per single-event ingest request without it, measured),
and a multipart upload would be parsed in memory for nothing.
"""

from daphne import http_protocol


class WebRequest(http_protocol.WebRequest):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)


def use() -> None:
    # daphne's HTTPFactory.buildProtocol looks its request class up in its module on every connection.
    if http_protocol.WebRequest is not WebRequest:
        http_protocol.WebRequest = WebRequest

"""A raw exchange as the panel shows it: a streamed body reassembled into its response object, and
its chunks as rows (ms since the request, bytes, the events each carried)."""

from typing import Any

from ..proxy.providers import anthropic, openai
from ..proxy.providers.base import Api
from ..proxy.sse import SSEParser


def _api(path: str) -> Api | None:
    for suffix, api in (("/chat/completions", openai.CHAT), ("/responses", openai.RESPONSES),
                        ("/messages", anthropic.MESSAGES)):
        if path.split("?")[0].rstrip("/").endswith(suffix):
            return api
    return None


def chunk_rows(chunks: list[list[Any]] | None) -> list[dict[str, Any]]:
    parser, rows = SSEParser(), []
    for ms, text in chunks or []:
        events = parser.feed(str(text).encode())
        names = [e.event if e.event != "message" else e.data[:60] for e in events]
        rows.append({"ms": round(float(ms), 1), "bytes": len(str(text).encode()), "event": ", ".join(names)})
    return rows


def reassembled(path: str, chunks: list[list[Any]] | None) -> dict[str, Any] | None:
    api = _api(path)
    reassembly = api.stream() if api and chunks else None
    if reassembly is None:
        return None
    parser = SSEParser()
    for _, text in chunks:
        for sse in parser.feed(str(text).encode()):
            reassembly.feed(sse)
    for sse in parser.close():
        reassembly.feed(sse)
    try:
        return reassembly.response()
    except Exception:  # a stream cut short may not make a response: the raw body is still shown
        return None

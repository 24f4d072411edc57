"""An incremental parser for server-sent events (the WHATWG event-stream format), free of Django.

Upstream chunks split events anywhere, even between the ``\\r`` and ``\\n`` of one line ending, so the
parser keeps the unfinished tail and only hands out events whose blank line has arrived.
"""

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class SSEEvent:
    event: str  # "message" when the stream names none
    data: str


class SSEParser:
    def __init__(self) -> None:
        self._tail = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._tail + chunk
        lines = _LINE_END.split(buffer)
        self._tail = lines.pop()
        # A lone "\r" at the end may be the first half of "\r\n": keep it to decide with the next chunk.
        if buffer.endswith(b"\r"):
            self._tail = lines.pop() + b"\r" if lines else b"\r"
        events = []
        for line in lines:
            event = self._line(line.decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SSEEvent]:
        """Events completed by the end of the stream (a last line with no line ending counts)."""
        tail, self._tail = self._tail.rstrip(b"\r"), b""
        events = self.feed(tail + b"\n\n") if tail or self._data else []
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

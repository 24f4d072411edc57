"""JSON text for the database and for answers, and parsed from requests: orjson where it keeps the
data exactly, json where it cannot.

json.dumps took ~5 us per content or metadata column, the largest single cost of storing an event
(profiled); orjson takes a tenth of that. It refuses integers beyond 64 bits and lone surrogates,
which json keeps, so those values take the slow way. NaN and Infinity never get here from a request
(``validation.load_json`` refuses them, as JSON does).
"""

import json
import re
from typing import Any

import orjson


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def loads(data: bytes | str) -> Any:
    """``json.loads``, three times faster on agent-sized bodies (a 33 KB history: 60 -> 23 us).

    What orjson refuses but json reads (integers beyond 64 bits, lone surrogates, NaN) takes the slow way.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def parsed_or_as_is(value: Any) -> Any:
    """A string's JSON value when it is JSON, else ``value`` unchanged (tool arguments come as either)."""
    if isinstance(value, str):
        try:
            return loads(value)
        except ValueError:
            return value
    return value


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` for a text column: JSON may carry a lone surrogate ("\\udc00"), which neither SQLite nor
    PostgreSQL text can hold, or a NUL, which PostgreSQL text cannot; either becomes U+FFFD there (JSON
    columns keep both exactly)."""
    try:  # both checks in C: a regular expression over every indexed text cost ~2 us an event (profiled)
        text.encode()
    except UnicodeEncodeError:
        return _UNSTORABLE.sub("\ufffd", text)
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


# PostgreSQL's jsonb cannot hold a NUL character or a lone surrogate anywhere in a value (JSON can spell
# both, "\u0000" and "\udc00"). Such a value is stored as its JSON text, where both are ASCII escapes,
# in a one-key object; so is a value that looks like that object, so that reading is exact.
_JSONB_TEXT = "whyops-local:json-text"


def for_jsonb(value: Any) -> Any:
    """``value`` as a jsonb column can hold it; ``from_jsonb`` gives it back."""
    try:  # the common case at orjson's speed; what it refuses or escapes as NUL is looked at closely
        holds = b"\\u0000" not in orjson.dumps(value)
    except TypeError:  # a lone surrogate, or an integer beyond 64 bits (which jsonb holds)
        holds = False
    if (holds or _jsonb_holds(value)) and not _is_jsonb_text(value):
        return value
    return {_JSONB_TEXT: json.dumps(value)}


def from_jsonb(value: Any) -> Any:
    return json.loads(value[_JSONB_TEXT]) if _is_jsonb_text(value) else value


def _is_jsonb_text(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_JSONB_TEXT), str)


def _jsonb_holds(value: Any) -> bool:
    if isinstance(value, str):
        return not _UNSTORABLE.search(value)
    if isinstance(value, dict):
        return all(_jsonb_holds(key) and _jsonb_holds(item) for key, item in value.items())
    if isinstance(value, list):
        return all(map(_jsonb_holds, value))
    return True

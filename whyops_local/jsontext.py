"""JSON text for the database and for answers: orjson where it keeps the data exactly, json where it cannot.

json.dumps took ~5 us per content or metadata column, the largest single cost of storing an event
(profiled); orjson takes a tenth of that. It refuses integers beyond 64 bits and lone surrogates,
which json keeps, so those values take the slow way. NaN and Infinity never get here from a request
(``validation.load_json`` refuses them, as JSON does).
"""

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)

"""What full-text search sees of an event or a message: its text, without the JSON around it."""

from typing import Any

from .jsontext import storable_text


def text_of(value: Any) -> str:
    """The string values of a JSON value (message text, answers, tool arguments and results,
    thinking, errors), one per line; object keys and punctuation are not searched."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, int | float) and not isinstance(item, bool):
            found.append(str(item))
    return storable_text("\n".join(found))  # a lone surrogate or NUL, kept exactly in content, cannot be indexed

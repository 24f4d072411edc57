"""What full-text search sees of an event or a message: its text, without the JSON around it."""

from typing import Any


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
    text = "\n".join(found)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate (kept exactly in content) cannot be indexed
        return text.encode("utf-8", "replace").decode()
    return text

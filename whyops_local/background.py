"""Coroutines run without anyone awaiting them, kept referenced until done (the loop holds only weak references)."""

import asyncio
from collections.abc import Awaitable

_running: set[asyncio.Future] = set()


def in_background(awaitable: Awaitable) -> None:
    task = asyncio.ensure_future(awaitable)
    _running.add(task)
    task.add_done_callback(_running.discard)

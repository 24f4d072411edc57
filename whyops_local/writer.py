"""All database writes of one process go through one thread, and queued event writes share a commit.

Under ASGI every sync request gets a thread (and a database connection) of its own, and SQLite
writers on separate connections wait for each other in its busy handler, which sleeps in steps
of up to 100 ms: 8 concurrent clients measured under 100 events/s that way. One writer thread
with one long-lived connection queues writes in memory instead; and since storing one event
alone costs ~2 ms but ~0.2 ms inside a larger transaction (measured), the event writes waiting
in the queue are stored together, each request still atomic on its own (store.record_jobs).
"""

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from . import live
from .store import EventsJob, RowCache, Saved, record_jobs

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_GROUP_EVENTS = 500


@dataclass
class _Task:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    fn: Callable[[], Any] | None = None  # a write of its own, or:
    job: EventsJob | None = None  # events to store, grouped with others
    size: int = 0


def _settle(task: _Task, outcome: Any) -> None:
    def settle() -> None:
        if task.future.done():
            return
        if isinstance(outcome, BaseException):
            task.future.set_exception(outcome)
        else:
            task.future.set_result(outcome)

    task.loop.call_soon_threadsafe(settle)


class _Writer:
    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._rows = RowCache()  # only this thread touches it

    def submit(self, task: _Task) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="whyops-writer", daemon=True)
                self._thread.start()
        self._tasks.put(task)

    def _run(self) -> None:
        held: _Task | None = None
        while True:
            task = held or self._tasks.get()
            held = None
            # The writer keeps its connection for the life of the process, reconnecting only after
            # a failure (say, PostgreSQL restarted); request threads close theirs as usual.
            if connection.errors_occurred and not connection.is_usable():
                connection.close()
            if task.fn is not None:
                self._do(task)
                self._rows.clear()  # say, a registration made a new latest version
                continue
            group, size = [task], task.size
            while size < MAX_GROUP_EVENTS:
                try:
                    more = self._tasks.get_nowait()
                except queue.Empty:
                    break
                if more.job is None:
                    held = more  # a different kind of write: after this group
                    break
                group.append(more)
                size += more.size
            for member, outcome in zip(group, _store_and_announce([t.job for t in group], self._rows)):
                _settle(member, outcome)

    @staticmethod
    def _do(task: _Task) -> None:
        try:
            outcome = task.fn()
        except Exception as exc:  # noqa: BLE001  (handed to the caller)
            outcome = exc
        _settle(task, outcome)


def _store_and_announce(jobs: list[EventsJob], cache: RowCache | None = None
                        ) -> list[tuple[list[Saved], list] | Exception]:
    """Store the jobs (one commit), then build each one's live messages: (saved, messages) or the error."""
    try:
        outcomes = record_jobs(jobs, cache)
    except Exception as exc:  # noqa: BLE001  (the commit failed: every request in the group fails)
        return [exc] * len(jobs)
    announced: list[tuple[list[Saved], list] | Exception] = []
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            announced.append(outcome)
            continue
        try:
            messages = live.messages_for(outcome)
        except Exception:  # the events are committed: a live-update failure must not fail the request
            log.exception("could not build live messages")
            messages = []
        announced.append((outcome, messages))
    return announced


_writer = _Writer()


def _task(**kwargs: Any) -> _Task:
    loop = asyncio.get_running_loop()
    return _Task(loop=loop, future=loop.create_future(), **kwargs)


async def write(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` (a function doing database writes) on the writer thread and wait for its result."""
    if not settings.WHYOPS_DEDICATED_WRITER:
        # Tests wrap each test in a transaction on their own thread: write there.
        return await sync_to_async(fn, thread_sensitive=True)(*args, **kwargs)
    task = _task(fn=lambda: fn(*args, **kwargs))
    _writer.submit(task)
    return await task.future


async def write_events(job: EventsJob) -> list[Saved]:
    """Store one request's events atomically; returns once they are committed (the live
    announcement is sent from the event loop without waiting for it)."""
    if settings.WHYOPS_DEDICATED_WRITER:
        task = _task(job=job, size=len(job.items))
        _writer.submit(task)
        outcome = await task.future
    else:
        (outcome,) = await write(_store_and_announce, [job])
        if isinstance(outcome, Exception):
            raise outcome
    saved, messages = outcome
    live.publish_soon(messages)
    return saved

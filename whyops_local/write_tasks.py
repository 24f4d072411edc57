"""What the writer does with the work it is given, wherever it runs (the writer process, or a test's thread).

Ingest requests arrive as their raw bodies and are validated here, next to the database, so that the
server's event loop only moves bytes. The requests that queued up meanwhile are stored in one
commit, each atomic on its own (``store.record_jobs``); anything else is a single write.
"""

from dataclasses import dataclass
from typing import Any, Callable

from . import jsontext, live
from .store import EventsJob, RowCache, Saved, record_jobs
from .validation import Invalid, parse_events


@dataclass
class Ingest:
    """One ``POST /api/events/ingest``: its body, and the ``X-External-User-Id`` header."""

    body: bytes
    user: str | None = None


@dataclass
class Write:
    """Any other write: a module-level function and its (picklable) arguments. With ``with_cache``
    it is also given the writer's row cache (``cache=``), which it keeps up to date; otherwise the
    cache is dropped after it, since the write may have changed cached rows."""

    fn: Callable[..., Any]
    args: tuple = ()
    with_cache: bool = False


# An ingest request is answered (status, JSON body, live messages to publish), or fails with an exception.
Answer = tuple[int, bytes, list[live.Message]]


def _json(payload: Any) -> bytes:
    return jsontext.dumps(payload).encode()


def ingest_group(tasks: list[Ingest], cache: RowCache | None = None) -> list[Answer | Exception]:
    """Validate and store several ingest requests in one commit; one answer per request, in order."""
    answers: list[Answer | Exception | None] = [None] * len(tasks)
    jobs, stored_at = [], []
    for position, task in enumerate(tasks):
        try:
            events, is_array = parse_events(task.body)
        except Invalid as exc:
            answers[position] = (exc.status, _json(exc.to_dict()), [])
            continue
        jobs.append(EventsJob(events, user=task.user))
        stored_at.append((position, is_array))
    for (position, is_array), outcome in zip(stored_at, _store_and_announce(jobs, cache)):
        if isinstance(outcome, Exception):
            answers[position] = outcome
            continue
        saved, messages = outcome
        results = [result.to_dict() for result in saved]
        answers[position] = (201, _json(results if is_array else results[0]), messages)
    return answers


def _store_and_announce(jobs: list[EventsJob], cache: RowCache | None) -> list[tuple[list[Saved], list] | Exception]:
    """Store the jobs (one commit), then build each one's live messages: (saved, messages) or the error."""
    if not jobs:
        return []
    try:
        outcomes = record_jobs(jobs, cache)
    except Exception as exc:  # noqa: BLE001  (the commit failed: every request in the group fails)
        return [exc] * len(jobs)
    return [outcome if isinstance(outcome, Exception) else (outcome, live.announcements(outcome))
            for outcome in outcomes]


def perform(task: Write, cache: RowCache | None = None) -> Any:
    """The write's result, or the exception it raised (handed to whoever asked for it)."""
    try:
        return task.fn(*task.args, cache=cache) if task.with_cache else task.fn(*task.args)
    except Exception as exc:  # noqa: BLE001
        return exc
    finally:
        if cache is not None and not task.with_cache:
            cache.clear()

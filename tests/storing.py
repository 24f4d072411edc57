"""Storing events the way the writer does, for tests and benchmarks that build data without HTTP."""

from whyops_local.domain.schemas import EventIn
from whyops_local.storage.rows import EventsJob, Saved, record_jobs


def record_events(items: list[EventIn], cache=None, **job) -> list[Saved]:
    """One request's events, stored atomically (``record_jobs`` with a single job); raises its error."""
    (outcome,) = record_jobs([EventsJob(items, **job)], cache)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome

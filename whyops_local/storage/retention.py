"""Removing traces: one on request (the API, the trace page), or the oldest by age or by the data's size
(``manage.py prune``, and the server itself with WHYOPS_RETENTION_DAYS / WHYOPS_MAX_DB_MB).

Deletes are writes like any other: they go through the writer (``writer.write``), in order with the
ingest requests, a bounded batch of traces per write so that ingest waits for no more than one
batch. A trace is removed whole (its events, raw exchanges, and the messages no other trace uses), and only when its newest
event is older than the cut-off, so nothing sent after it is lost. The space is given back to the
disk with SQLite's incremental vacuum.
"""

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from ..live import messages as live
from ..models import Event, Exchange, MessageBlob, Trace
from . import content, search
from .writer import write

log = logging.getLogger(__name__)
BATCH = 20  # traces per write
_VACUUM_PAGES = 2000  # pages handed back per write (8 MB at SQLite's 4 KB pages)


def _deleted_messages(trace_ids: list[str]) -> list[live.Message]:
    messages: list[live.Message] = []
    for trace_id in trace_ids:
        message = {"type": "trace.deleted", "traceId": trace_id}
        messages += [(live.TRACE_LIST_GROUP, message), (live.trace_group(trace_id), message)]
    return messages


@transaction.atomic
def delete_traces(pks: list[int]) -> list[live.Message]:
    """Delete these traces whole; returns the live messages announcing it (run in the writer)."""
    events = Event.objects.filter(trace_id__in=pks)
    exchanges = list(events.filter(exchange__isnull=False).values_list("exchange_id", flat=True))
    search.forget(pks)
    events.delete()
    for start in range(0, len(exchanges), 5000):
        Exchange.objects.filter(pk__in=exchanges[start:start + 5000]).delete()
    uses = MessageBlob.objects.filter(trace_id__in=pks)
    used = list(uses.values_list("message_id", flat=True).distinct())
    uses.delete()
    content.collect(used)
    traces = Trace.objects.filter(pk__in=pks)
    names = list(traces.values_list("trace_id", flat=True))
    traces.delete()
    return _deleted_messages(names)


def delete_trace_named(trace_id: str) -> list[live.Message] | None:
    """None when there is no such trace."""
    pk = Trace.objects.filter(trace_id=trace_id).values_list("pk", flat=True).first()
    return None if pk is None else delete_traces([pk])


def delete_older(cutoff: datetime, limit: int = BATCH) -> list[live.Message]:
    """Up to ``limit`` of the traces whose newest event is older than ``cutoff``, oldest first."""
    pks = list(Trace.objects.filter(last_event_at__lt=cutoff).order_by("last_event_at", "pk")
               .values_list("pk", flat=True)[:limit])
    return delete_traces(pks) if pks else []


def delete_oldest(limit: int = BATCH) -> list[live.Message]:
    pks = list(Trace.objects.order_by("last_event_at", "pk").values_list("pk", flat=True)[:limit])
    return delete_traces(pks) if pks else []


def _pragma(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


def data_bytes() -> int | None:
    """Bytes the data takes in the database (free pages not counted); None where it cannot be told."""
    if connection.vendor == "sqlite":
        return (_pragma("page_count") - _pragma("freelist_count")) * _pragma("page_size")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            return cursor.fetchone()[0]
    return None


def data_figures() -> dict[str, int | None]:
    """The data's size and counts (``/api/health``, the page footer): totals kept on the traces, so
    no scan of the events."""
    figures = Trace.objects.aggregate(traces=Count("pk"), events=Sum("event_count"))
    return {"dataBytes": data_bytes(), "fileBytes": file_bytes(), "traceCount": figures["traces"],
            "eventCount": figures["events"] or 0}


def file_bytes() -> int | None:
    if connection.vendor != "sqlite":
        return data_bytes()
    return _pragma("page_count") * _pragma("page_size")


def give_back_space() -> int:
    """Hand free pages back to the disk, some per call; returns how many remain free (SQLite only).

    A database made before auto_vacuum was set (settings' init_command sets it for new ones) needs
    one full VACUUM to start keeping track of its free pages."""
    if connection.vendor != "sqlite":
        return 0
    if _pragma("auto_vacuum") != 2:  # 2: INCREMENTAL
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA auto_vacuum = INCREMENTAL")
            cursor.execute("VACUUM")
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA incremental_vacuum({_VACUUM_PAGES})")
        cursor.fetchall()
    return _pragma("freelist_count")


@dataclass
class Pruned:
    traces: int = 0
    messages: list[live.Message] = field(default_factory=list)


async def _until_done(step, *args) -> list[live.Message]:
    messages = []
    while found := await write(step, *args):
        messages += found
    return messages


async def prune(older_than: timedelta | None = None, keep_bytes: int | None = None, trace_id: str | None = None) -> Pruned:
    """Delete what the arguments say, a batch per write, then give the space back to the disk. The live
    messages are the caller's to publish (from the server's event loop, where the channel layer lives)."""
    deleted: list[live.Message] = []
    if trace_id is not None:
        deleted += await write(delete_trace_named, trace_id) or []
    if older_than is not None:
        deleted += await _until_done(delete_older, timezone.now() - older_than)
    if keep_bytes is not None:
        while (await write(data_bytes) or 0) > keep_bytes and (found := await write(delete_oldest)):
            deleted += found
    while await write(give_back_space):
        pass
    return Pruned(sum(group == live.TRACE_LIST_GROUP for group, _ in deleted), deleted)


def _enforce_forever(interval: float) -> None:
    # On a thread of its own, with its own event loop: pages open meanwhile see the traces go on reload.
    days, megabytes = settings.WHYOPS_RETENTION_DAYS, settings.WHYOPS_MAX_DB_MB

    async def loop() -> None:
        while True:
            try:
                await prune(timedelta(days=days) if days else None,
                            int(megabytes * 1024 * 1024) if megabytes else None)
            except Exception:
                log.exception("retention: pruning failed; trying again later")
            await asyncio.sleep(interval)

    asyncio.run(loop())


def start(interval: float = 600) -> None:
    """With WHYOPS_RETENTION_DAYS or WHYOPS_MAX_DB_MB set, prune now and every ``interval`` seconds."""
    if settings.WHYOPS_RETENTION_DAYS or settings.WHYOPS_MAX_DB_MB:
        threading.Thread(target=_enforce_forever, args=(interval,), name="whyops-retention", daemon=True).start()

"""Full-text search over what events say (domain/searchtext.py), in the writer's commit.

SQLite: an FTS5 table with the trigram tokenizer, so that any substring of 3 characters or more is
found through the index, case-insensitively (ASCII), as the list's search always did; shorter
queries scan the indexed text. A row per event (rowid: the event's id) and per message stored once
(rowid: minus the blob's id), so a growing history's messages are indexed once, not once per call.
Other databases search the stored content directly (no index yet).
"""

from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from ..domain.searchtext import text_of

TABLE = "whyops_search"
_ROWS_PER_STATEMENT = 3000


def available() -> bool:
    return connection.vendor == "sqlite"


def index(events: list, packed: set[int], new_blobs: list[tuple[int, int, Any]]) -> None:
    """Index freshly inserted ``events`` (whole) and ``new_blobs``: ``(blob id, trace pk, message)``.
    The messages of ``packed`` events are indexed as their blobs."""
    if not available():
        return
    rows = [(-pk, trace_pk, text) for pk, trace_pk, message in new_blobs if (text := text_of(message))]
    for event in events:
        content = event.content
        if event.pk in packed:
            content = {k: v for k, v in content.items() if k != "messages"} if isinstance(content, dict) else None
        if text := text_of(content):
            rows.append((event.pk, event.trace_id, text))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start:start + _ROWS_PER_STATEMENT]
            cursor.execute(f"INSERT INTO {TABLE} (rowid, trace, body) VALUES " + ", ".join(["(%s, %s, %s)"] * len(chunk)),
                           [value for row in chunk for value in row])


def forget(trace_pks: list[int]) -> None:
    if not available() or not trace_pks:
        return
    from ..models import Event, MessageBlob

    rowids = [*Event.objects.filter(trace_id__in=trace_pks).values_list("pk", flat=True),
              *(-pk for pk in MessageBlob.objects.filter(trace_id__in=trace_pks).values_list("pk", flat=True))]
    with connection.cursor() as cursor:
        for start in range(0, len(rowids), 5000):
            chunk = rowids[start:start + 5000]
            cursor.execute(f"DELETE FROM {TABLE} WHERE rowid IN ({', '.join(['%s'] * len(chunk))})", chunk)


def _where(query: str) -> tuple[str, list[str]]:
    # The table keeps no positions (detail=none: a third of the index's size), so a LIKE finds the
    # candidates through the trigrams and FTS5 checks them against the text; LIKE's ESCAPE would
    # keep it from using the index, so "%" and "_" match anything there and instr() makes them literal.
    return "body LIKE %s AND instr(lower(body), lower(%s)) > 0", [f"%{query}%", query]


def matching(query: str) -> Q:
    """Traces whose trace id or any event's text holds ``query``."""
    by_id = Q(trace_id__icontains=query)
    if available():
        where, params = _where(query)
        return by_id | Q(pk__in=RawSQL(f"SELECT trace FROM {TABLE} WHERE {where}", params))
    from ..models import Event, MessageBlob

    events = Event.objects.annotate(text=Cast("content", TextField()))
    return (by_id | Q(Exists(events.filter(trace=OuterRef("pk"), text__icontains=query)))
            | Q(Exists(MessageBlob.objects.filter(trace=OuterRef("pk"), data__icontains=query))))


def _around(text: str, query: str, width: int) -> str:
    # Cut here rather than by FTS5's snippet(), whose trigram highlights cover part of a match.
    at = text.lower().find(query.lower())
    if at < 0:
        return text[:2 * width]
    begin, end = max(0, at - width), at + len(query) + width
    return ("…" if begin else "") + text[begin:at] + "\x02" + text[at:at + len(query)] + "\x03" + text[at + len(query):end] + (
        "…" if end < len(text) else "")


def snippets(trace_pks: list[int], query: str, width: int = 50) -> dict[int, str]:
    """For each trace, a little of the text around its first match (a "…" where text is cut); the
    match is between \x02 and \x03 (made <mark> by the page, after escaping)."""
    if not available() or not trace_pks or not query:
        return {}
    where, params = _where(query)
    marks = ", ".join(["%s"] * len(trace_pks))
    found: dict[int, str] = {}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT trace, body FROM {TABLE} WHERE {where} AND trace IN ({marks})", [*params, *trace_pks])
        for trace, text in cursor.fetchall():
            if trace not in found:
                found[trace] = " ".join(_around(text, query, width).split())
    return found

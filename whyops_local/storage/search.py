"""Full-text search over what events say (domain/searchtext.py), in the writer's commit.

A row per event (``TABLE``, rowid: the event's id, with its trace) and, in an index of their own
(``MESSAGES``), per message stored once (rowid: the message's id; the traces using it are its
``MessageBlob`` rows), so a message is indexed once however many calls and traces send it; trace
ids have an index of their own too. Apart, each index's rowids grow in one run: FTS5 keeps a
segment's rowids as deltas, and one index of both (messages at minus their id) took 250 KB of a
growing history's database instead of ~135 (bench/storage.py).
SQLite: FTS5 tables with the trigram tokenizer, so that any substring of 3 characters or more is
found through the index, case-insensitively (ASCII), as the list's search always did. They keep
no text of their own (it was a third of a growing history's database): the text indexes read it
from the stored rows through views (``SOURCE``, ``MESSAGE_SOURCE``) that call ``stored_text`` (a SQL
function every connection gets), the trace ids' index from the trace table, kept up to date by triggers.
PostgreSQL: a plain table with a pg_trgm GIN index, searched with ILIKE. Shorter queries scan the
indexed text.
"""

import re
from typing import Any

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL

from ..domain import delta, jsontext
from ..domain.searchtext import text_of

TABLE = "whyops_search"
SOURCE = "whyops_search_source"
MESSAGES = "whyops_message_search"
MESSAGE_SOURCE = "whyops_message_search_source"
TRACE_IDS = "whyops_trace_search"
USES = "whyops_local_messageblob"
_ROWS_PER_STATEMENT = 3000
# Past this many matching rows a query is frequent: the list finds its newest traces sooner by
# walking the traces newest first than by sorting every match.
_FEW = 5000


def stored_text(value: str | bytes | None, packed: int) -> str:
    """What ``index`` indexes of a stored row: a message's squeezed JSON, or an event's content
    (JSON text) without the messages stored apart when ``packed``."""
    if isinstance(value, bytes):
        return text_of(jsontext.loads(delta.unsqueeze(value)))
    content = None if value is None else jsontext.loads(value)
    if packed:
        content = {k: v for k, v in content.items() if k != "messages"} if isinstance(content, dict) else None
    return text_of(content)


def on_connection(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function("whyops_stored_text", 2, stored_text, deterministic=True)


def stored_rows(Event, MessageBlob):
    """``(rowid, trace pk, text)`` for what is already stored, as the migrations that build an index
    before messages were shared (0009) meet it: a message per trace, with its trace."""
    for pk, trace, data in MessageBlob.objects.values_list("pk", "trace_id", "data").iterator():
        yield -pk, trace, text_of(jsontext.loads(data))
    for pk, trace, content, packing in Event.objects.values_list("pk", "trace_id", "content", "packing").iterator():
        if packing and isinstance(content, dict):
            content = {k: v for k, v in content.items() if k != "messages"}
        if text := text_of(None if packing and not isinstance(content, dict) else content):
            yield pk, trace, text


def index(events: list, packed: set[int], new_messages: list[tuple[int, Any]]) -> None:
    """Index freshly inserted ``events`` (whole) and ``new_messages``: ``(message id, message)``.
    The messages of ``packed`` events are indexed as stored messages."""
    messages = [(pk, text) for pk, message in new_messages if (text := text_of(message))]
    rows = []
    for event in events:
        content = event.content
        if event.pk in packed:
            content = {k: v for k, v in content.items() if k != "messages"} if isinstance(content, dict) else None
        if text := text_of(content):
            rows.append((event.pk, event.trace_id, text))
    _insert(MESSAGES, "rowid, body", messages)
    _insert(TABLE, "rowid, trace, body", rows)


def _insert(table: str, columns: str, rows: list[tuple]) -> None:
    marks = "(" + ", ".join(["%s"] * (columns.count(",") + 1)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start:start + _ROWS_PER_STATEMENT]
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([marks] * len(chunk)),
                           [value for row in chunk for value in row])


def _delete(table: str, source: str, columns: str, rowids: list[int]) -> None:
    """Unindex these rows, before the rows they index are deleted (SQLite's index is told the text it
    indexed, read back through the view; a row without text was never indexed, and telling the
    index of it would break the index's counts)."""
    with connection.cursor() as cursor:
        for start in range(0, len(rowids), 5000):
            chunk = rowids[start:start + 5000]
            marks = ", ".join(["%s"] * len(chunk))
            if connection.vendor == "sqlite":
                cursor.execute(f"INSERT INTO {table} ({table}, rowid, {columns}) SELECT 'delete', id, {columns}"
                               f" FROM {source} WHERE id IN ({marks}) AND body != ''", chunk)
            else:
                cursor.execute(f"DELETE FROM {table} WHERE rowid IN ({marks})", chunk)


def forget(trace_pks: list[int]) -> None:
    """Unindex the events of these traces (their messages go with ``forget_messages``)."""
    from ..models import Event

    if trace_pks:
        _delete(TABLE, SOURCE, "trace, body", list(Event.objects.filter(trace_id__in=trace_pks).values_list("pk", flat=True)))


def forget_messages(message_pks: list[int]) -> None:
    _delete(MESSAGES, MESSAGE_SOURCE, "body", message_pks)


def _where(query: str, column: str = "body") -> tuple[str, list[str]]:
    if connection.vendor == "postgresql":
        literal = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"{column} ILIKE %s ESCAPE '\\'", [f"%{literal}%"]
    # The table keeps no positions (detail=none: a third of the index's size), so a LIKE finds the
    # candidates through the trigrams and FTS5 checks them against the text; LIKE's ESCAPE would
    # keep it from using the index, so "%" and "_" match anything there and instr() makes them literal.
    return f"{column} LIKE %s AND instr(lower({column}), lower(%s)) > 0", [f"%{query}%", query]


def _trace_ids_sql(query: str) -> tuple[str, list[str]]:
    where, params = _where(query, "trace_id")
    if connection.vendor == "postgresql":
        return f"SELECT id FROM whyops_local_trace WHERE {where}", params
    return f"SELECT rowid FROM {TRACE_IDS} WHERE {where}", params


def _few(sql: str, params: list[str]) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql} LIMIT {_FEW + 1}) AS found", params)
        return cursor.fetchone()[0] <= _FEW


def _short(query: str) -> bool:
    """Too short for a trigram: SQLite would read every row's text through the view (a Python call
    each, 0.7 s at 100,000 traces), so ``_scan_sql`` reads the stored rows themselves."""
    return connection.vendor == "sqlite" and len(query) < 3


# Printable ASCII but '"' and '\\': spelled as is in stored JSON, where text holding it must hold it too.
_AS_IS = re.compile(r'[ !#-\[\]-~]+')
# As the view whyops_search_source reads it: an event whose messages are stored apart is indexed without them.
_EVENT_TEXT = "whyops_stored_text(e.content, json_type(e.packing, '$.messages') IS NOT NULL)"


def _scan_sql(query: str, trace_pks: list[int] | None = None) -> tuple[str, list]:
    """``(trace, text)`` of the events and used messages whose text holds ``query``, by reading them
    (of the traces ``trace_pks`` only, if given); an event's JSON is looked at first, so that only
    the candidates' text is worked out."""
    of = f" IN ({', '.join(['%s'] * len(trace_pks))}) AND " if trace_pks else ""
    as_is = _AS_IS.fullmatch(query) is not None
    events = (f"SELECT e.trace_id, {_EVENT_TEXT} FROM whyops_local_event e WHERE {'e.trace_id' + of if of else ''}"
              f"{'instr(lower(e.content), lower(%s)) > 0 AND ' if as_is else ''}instr(lower({_EVENT_TEXT}), lower(%s)) > 0")
    messages = (f"SELECT u.trace_id, m.body FROM {USES} u JOIN (SELECT id, whyops_stored_text(data, 0) AS body"
                f" FROM whyops_local_message) m ON m.id = u.message_id"
                f" WHERE {'u.trace_id' + of if of else ''}instr(lower(m.body), lower(%s)) > 0")
    among = list(trace_pks or [])
    return f"{events} UNION ALL {messages}", [*among, *[query] * (1 + as_is), *among, query]


def _text_sql(query: str) -> tuple[str, list[str]]:
    """The traces of the events whose text holds ``query``, and of those using a message that does."""
    if _short(query):
        sql, params = _scan_sql(query)
        return f"SELECT trace_id FROM ({sql}) AS found", params
    where, params = _where(query)
    return (f"SELECT trace FROM {TABLE} WHERE {where} UNION ALL SELECT trace_id FROM {USES}"
            f" WHERE message_id IN (SELECT rowid FROM {MESSAGES} WHERE {where})", params * 2)


def matching(query: str) -> Q:
    """Traces whose trace id or any event's text holds ``query``."""
    by_text, params = _text_sql(query)
    by_id, id_params = _trace_ids_sql(query)
    if _few(by_text, params) and _few(by_id, id_params):
        # Both through their index, and only the matches sorted.
        return Q(pk__in=RawSQL(by_id, id_params)) | Q(pk__in=RawSQL(by_text, params))
    return Q(trace_id__icontains=query) | Q(pk__in=RawSQL(by_text, params))


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
    if not trace_pks or not query:
        return {}
    marks = ", ".join(["%s"] * len(trace_pks))
    if _short(query):
        sql, params = _scan_sql(query, trace_pks)
    else:
        where, by = _where(query)
        sql = (f"SELECT trace, body FROM {TABLE} WHERE {where} AND trace IN ({marks})"
               f" UNION ALL SELECT u.trace_id, s.body FROM {MESSAGES} s JOIN {USES} u ON u.message_id = s.rowid"
               f" WHERE {where} AND u.trace_id IN ({marks})")
        params = [*by, *trace_pks, *by, *trace_pks]
    found: dict[int, str] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for trace, text in cursor.fetchall():
            if trace not in found:
                found[trace] = " ".join(_around(text, query, width).split())
    return found

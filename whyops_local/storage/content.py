"""The content store: what agents resend on every call is stored once, and put back on reading.

Measured on a 200-call growing-history run through the proxy (bench/storage.py), each call's whole
history was stored twice (its ``user_message`` and its raw request body): 205x the distinct bytes.
Here:

- a proxied request body is stored as a delta of the trace's previous request body
  (``domain.delta.split``), byte-exact, the delta zstd-squeezed with the stored JSON of the last
  messages it holds as the dictionary (its new text is theirs); reading follows the chain of bases
  in one recursive query;
- its headers are stored as what changed from the trace's first exchange's, and its response body
  squeezed with that exchange's as the dictionary (``pack``): reading one costs one more row;
- the messages of a ``user_message`` / ``tool_result`` are stored once in the database (``Message``,
  by digest, shared by the traces that send them), each trace holding a use of each
  (``MessageBlob``) and the event keeping the uses' ids as runs; a message no trace uses any more
  is deleted with the last one (``collect``); its system prompt and tools, when they are its agent
  version's, are read from the version;
- an event's metadata is stored as what differs from its trace's first event's of the same kind;
- a stream's chunks keep only their arrival time and length.

Everything is written in the writer's transaction, and events come back whole from any queryset
(``EventQuerySet``).
"""

from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection
from django.db.models import Exists, OuterRef

from ..domain import delta, jsontext
from ..models import WHOLE, AgentVersion, Event, Exchange, Message, MessageBlob

PACKED_KINDS = frozenset({"user_message", "tool_result"})
_VERSION_KEYS = {"systemPrompt": "system_prompt", "tools": "tools"}
# Longer chains are cut by storing a whole body: reading one costs a row per link.
MAX_CHAIN = 500
MAX_LIST_CHAIN = 32  # an event's message list continues at most this many others (a query each to read alone)
_IN_CHUNK = 5000  # ids per IN (...): well under SQLite's 32766 parameters


# Raw exchanges ----------------------------------------------------------------------------------


@dataclass
class Parts:
    """An exchange's headers and response body, whole."""

    exchange_id: int | None
    request_headers: dict[str, str]
    response_headers: dict[str, str]
    response: bytes


@dataclass
class Known:
    """A stored exchange's request body, kept by the writer as the next call's base, and the exchange
    the trace's next ones pack their headers and response against."""

    exchange_id: int
    body: bytes
    depth: int  # links to the first whole body
    anchor: Parts | None = None

    def stored_as(self, pk: int) -> "Known":
        self.exchange_id = pk
        if self.anchor is not None and self.anchor.exchange_id is None:
            self.anchor.exchange_id = pk
        return self


# A message's stored JSON is more compact than a client's: a little longer than the bytes is still them.
_DICTIONARY_SLACK = 256
# A response this long is not made a dictionary: each exchange packed against it would cost its length.
_ANCHOR_RESPONSE_LIMIT = 64 * 1024


def save_exchange(exchange: Exchange, body: bytes, trace_id: str, cache, originals: list) -> None:
    """Store the unsaved exchange of the events ``pack_events`` just packed (``originals``), against the
    trace's newest one. ``cache``: the writer's RowCache, which keeps it for the trace's next one."""
    base = cache.requests.get(trace_id) or last_request(trace_id)
    known = store_exchange(exchange, body, base, *(originals[-1][3:] if originals else ()))
    exchange.save()
    cache.requests[trace_id] = known.stored_as(exchange.pk)


def store_exchange(exchange: Exchange, body: bytes, base: Known | None, uses: list[int] = (),
                   texts: list[str] = ()) -> Known:
    """Set the unsaved exchange's stored columns from its whole headers, ``body`` and its response body
    (``response_data``, as relayed), against the trace's newest stored exchange ``base``; ``uses`` and
    ``texts``: the messages the body holds, as the ids of their uses (``MessageBlob``) and their stored
    JSON. Returns what the writer keeps for the next one, once given the exchange's id (``Known.stored_as``)."""
    depth = store_request(exchange, body, base, uses, texts)
    whole = Parts(None, exchange.request_head, exchange.response_head, bytes(exchange.response_data))
    anchor = pack(exchange, whole, base.anchor if base is not None else None)
    exchange.__dict__[WHOLE] = whole
    return Known(0, body, depth, anchor)


def pack(exchange, whole: Parts, anchor: Parts | None) -> Parts | None:
    """Set the exchange's ``pack_base``, headers and ``response_data`` for its ``whole`` parts, against
    ``anchor`` (a stored exchange of its trace kept whole); returns the anchor for the trace's next one.

    A call's headers differ from the trace's other calls' in a few values (content-length, date, a
    request id) and its response mostly in the answer: on bench/storage.py's run, 356 + 196 bytes of
    headers became ~85 + ~90, and a ~280-byte squeezed response ~25."""
    exchange.request_head, exchange.response_head = whole.request_headers, whole.response_headers
    if anchor is None or anchor.exchange_id is None:
        exchange.pack_base, exchange.response_data = None, delta.squeeze(whole.response)
        return whole if len(whole.response) <= _ANCHOR_RESPONSE_LIMIT else None
    exchange.pack_base = anchor.exchange_id
    for side in ("request", "response"):
        headers = getattr(whole, f"{side}_headers")
        found = delta.changes(getattr(anchor, f"{side}_headers"), headers)
        if len(jsontext.dumps(found)) < len(jsontext.dumps(headers)):
            setattr(exchange, f"{side}_head", found)
    exchange.response_data = delta.squeeze(whole.response, anchor.response)
    return anchor


def whole(exchange, anchor: Parts | None) -> Parts:
    """A stored exchange's parts, whole, from its columns and those of the exchange it packs against."""
    if exchange.pack_base is None or anchor is None:
        return Parts(exchange.pk, exchange.request_head, exchange.response_head,
                     delta.unsqueeze(bytes(exchange.response_data)))
    heads = [delta.changed(getattr(anchor, f"{side}_headers"), head) if isinstance(head, list) else head
             for side, head in (("request", exchange.request_head), ("response", exchange.response_head))]
    return Parts(exchange.pk, *heads, delta.unsqueeze(bytes(exchange.response_data), anchor.response))


def unpack_exchanges(exchanges: list[Exchange]) -> None:
    """Put back the exchanges' whole headers and response bodies, where the model reads them (a query
    for the exchanges they pack against, which are kept whole)."""
    bases = {x.pack_base for x in exchanges if x.pack_base is not None}
    anchors = {x.pk: whole(x, None) for x in Exchange.objects.filter(pk__in=bases)}
    for exchange in exchanges:
        exchange.__dict__[WHOLE] = whole(exchange, anchors.get(exchange.pack_base))


def store_request(exchange: Exchange, body: bytes, base: Known | None, uses: list[int] = (),
                  texts: list[str] = ()) -> int:
    """Set the exchange's request columns for ``body``; returns its depth in the chain.

    What a call adds to its history is its new messages, stored once as messages too: the bytes it
    does not share with ``base`` are squeezed with the last messages it holds (``texts``, as stored) as
    zstd's dictionary. On bench/storage.py's run, ~550 bytes a call (the new ~1.2 KB of text) -> ~55."""
    middle = body
    exchange.request_base, exchange.request_prefix, exchange.request_suffix = None, 0, 0
    if base is not None and base.depth < MAX_CHAIN:
        prefix, suffix, rest = delta.split(base.body, body)
        if prefix + suffix >= len(body) // 2:
            exchange.request_base, exchange.request_prefix, exchange.request_suffix = base.exchange_id, prefix, suffix
            middle = rest
    first, size = len(texts), 0
    while first and size + len(texts[first - 1]) <= len(middle) + _DICTIONARY_SLACK:  # no more text than it squeezes
        first -= 1
        size += len(texts[first])
    exchange.request_dictionary = delta.runs(uses[first:]) if first < len(texts) else None
    exchange.request_data = delta.squeeze(middle, "".join(texts[first:]).encode())
    return 0 if exchange.request_base is None else base.depth + 1


def _links(ids: list[int]) -> dict[int, tuple[int | None, int, int, bytes, list | None]]:
    """Every exchange the request bodies of ``ids`` are built from, with its columns."""
    table = connection.ops.quote_name(Exchange._meta.db_table)
    found: dict[int, tuple[int | None, int, int, bytes, list | None]] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start:start + _IN_CHUNK]
        marks = ", ".join(["%s"] * len(chunk))
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH RECURSIVE chain(id) AS (SELECT id FROM {table} WHERE id IN ({marks})"
                f" UNION SELECT e.request_base FROM {table} e JOIN chain ON e.id = chain.id"
                f" WHERE e.request_base IS NOT NULL)"
                f" SELECT id, request_base, request_prefix, request_suffix, request_data, request_dictionary FROM {table}"
                f" WHERE id IN (SELECT id FROM chain)", chunk)
            found.update({row[0]: (row[1], row[2], row[3], bytes(row[4]), row[5] and jsontext.loads(row[5]))
                          for row in cursor.fetchall()})
    return found


def request_bodies(ids: list[int]) -> dict[int, bytes]:
    """The request bodies of the exchanges ``ids``, byte for byte."""
    wanted = set(ids)
    return {pk: known.body for pk, known in _known(ids).items() if pk in wanted}


def message_texts(ids: set[int]) -> dict[int, bytes]:
    """The stored JSON of the messages these uses (``MessageBlob``) are of."""
    found: dict[int, bytes] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), _IN_CHUNK):
        rows = MessageBlob.objects.filter(pk__in=ordered[start:start + _IN_CHUNK]).values_list("pk", "message__data")
        found.update((pk, delta.unsqueeze(bytes(data))) for pk, data in rows)
    return found


def unsqueeze_request(data: bytes, dictionary: list | None, texts: dict[int, bytes]) -> bytes:
    """A stored request's bytes (its whole body, or the middle of its delta), with ``texts`` holding
    those of its ``dictionary``'s messages (``message_texts``)."""
    return delta.unsqueeze(data, b"".join(texts[use] for use in delta.ids_of(dictionary or [])))


def _known(ids: list[int]) -> dict[int, Known]:
    links = _links(list(ids))
    texts = message_texts({pk for link in links.values() if link[4] for pk in delta.ids_of(link[4])})
    built: dict[int, Known] = {}
    for pk in sorted(links):  # a base is always an earlier exchange
        base_id, prefix, suffix, data, dictionary = links[pk]
        data = unsqueeze_request(data, dictionary, texts)
        if base_id is None:
            built[pk] = Known(pk, data, 0)
        else:
            base = built[base_id]
            built[pk] = Known(pk, delta.join(base.body, prefix, suffix, data), base.depth + 1)
    return built


def last_request(trace_id: str) -> Known | None:
    """The newest stored exchange of a trace, for a writer that has none in memory."""
    newest = (Event.objects.filter(trace__trace_id=trace_id, exchange__isnull=False)
              .order_by("-pk").values_list("exchange_id", flat=True).first())
    if newest is None:
        return None
    known = _known([newest])[newest]
    anchor = Exchange.objects.filter(pk=newest).values_list("pack_base", flat=True).first() or newest
    known.anchor = whole(Exchange.objects.get(pk=anchor), None)
    if len(known.anchor.response) > _ANCHOR_RESPONSE_LIMIT:
        known.anchor = None
    return known


def chunk_marks(chunks: list[list[Any]] | None, body_text: str) -> list[list[Any]] | None:
    """``[ms, length]`` for each ``[ms, text]`` chunk whose texts make up the decoded body."""
    if chunks is None:
        return None
    if sum(len(text) for _, text in chunks) != len(body_text):
        raise ValueError("the chunks are not the body")
    return [[ms, len(text)] for ms, text in chunks]


# Events -----------------------------------------------------------------------------------------


def _messages_of(event: Event) -> list | None:
    content = event.content
    if event.event_type not in PACKED_KINDS:
        return None
    messages = content.get("messages") if isinstance(content, dict) else content
    return messages if isinstance(messages, list) and len(messages) >= 2 else None


def _stored_messages(digests: list[bytes]) -> dict[bytes, int]:
    found: dict[bytes, int] = {}
    for start in range(0, len(digests), _IN_CHUNK):
        rows = Message.objects.filter(digest__in=digests[start:start + _IN_CHUNK]).values_list("digest", "pk")
        found.update((bytes(d), pk) for d, pk in rows)
    return found


def _blob_ids(trace_pk: int, texts: list[str], messages: list, created: list, have: dict[bytes, int]) -> list[int]:
    """Ids of the trace's uses of these message texts (``MessageBlob``), storing the messages the
    database does not have yet (added to ``created`` as ``(message id, message)``) and the uses the
    trace does not have. ``have``: the digests and use ids the writer knows of for the trace."""
    digests = [delta.digest(text.encode()) for text in texts]
    unknown = [d for d in dict.fromkeys(digests) if d not in have]
    if unknown:
        stored = _stored_messages(unknown)
        fresh = {d: (text, message) for d, text, message in zip(digests, texts, messages, strict=True)
                 if d not in have and d not in stored}
        if fresh:
            made = Message.objects.bulk_create(
                [Message(digest=d, data=delta.squeeze(text.encode())) for d, (text, _) in fresh.items()])
            stored.update((m.digest, m.pk) for m in made)
            created += [(m.pk, message) for m, (_, message) in zip(made, fresh.values(), strict=True)]
        wanted = [stored[d] for d in unknown]
        uses: dict[int, int] = {}
        for start in range(0, len(wanted), _IN_CHUNK):
            rows = MessageBlob.objects.filter(trace_id=trace_pk, message_id__in=wanted[start:start + _IN_CHUNK])
            uses.update(rows.values_list("message_id", "pk"))
        made_uses = MessageBlob.objects.bulk_create(
            [MessageBlob(trace_id=trace_pk, message_id=pk) for pk in wanted if pk not in uses])
        uses.update((use.message_id, use.pk) for use in made_uses)
        have.update((d, uses[stored[d]]) for d in unknown)
    return [have[d] for d in digests]


def collect(message_ids: list[int]) -> None:
    """Delete those of these messages no trace uses any more, and their search rows."""
    from . import search

    unused: list[int] = []
    for start in range(0, len(message_ids), _IN_CHUNK):
        chunk = Message.objects.filter(pk__in=message_ids[start:start + _IN_CHUNK])
        unused += chunk.exclude(Exists(MessageBlob.objects.filter(message=OuterRef("pk")))).values_list("pk", flat=True)
    search.forget_messages(unused)
    for start in range(0, len(unused), _IN_CHUNK):
        Message.objects.filter(pk__in=unused[start:start + _IN_CHUNK]).delete()


def _version_values(version_ids: set[str]) -> dict[str, dict[str, Any]]:
    rows = AgentVersion.objects.filter(pk__in=version_ids).values_list("pk", *_VERSION_KEYS.values())
    return {pk: dict(zip(_VERSION_KEYS, values, strict=True)) for pk, *values in rows}


def _pack_metadata(event: Event, versions: dict[str, dict[str, Any]]) -> list[str]:
    """Leave out of the metadata what the event's agent version holds, exactly; returns the keys."""
    held = versions.get(event.agent_version_id) or {}
    keys = [key for key in _VERSION_KEYS if event.metadata.get(key) and key in held
            and jsontext.dumps(event.metadata[key]) == jsontext.dumps(held[key])]
    if keys:
        event.metadata = {key: (None if key in keys else value) for key, value in event.metadata.items()}
    return keys


@dataclass
class Listed:
    """A stored event's message ids, kept by the writer as the next event's base."""

    event_id: int
    ids: list[int]
    depth: int


def _list_packing(ids: list[int], base: Listed | None) -> dict[str, Any]:
    """The ids as runs, or, when they continue ``base``'s, as how many of its ids they keep and the rest:
    a growing history's runs break at every repeated message (an agent's "ok"), and its ids would be
    stored again for each call."""
    if base is not None and base.depth < MAX_LIST_CHAIN:
        keep = len(delta.common_prefix(base.ids, ids))
        if keep >= len(ids) // 2:
            return {"after": base.event_id, "keep": keep, "depth": base.depth + 1, "messages": delta.runs(ids[keep:])}
    return {"messages": delta.runs(ids)}


def _last_listed(trace_pk: int) -> Listed | None:
    row = (Event.objects.filter(trace_id=trace_pk, packing__has_key="messages").order_by("-pk")
           .values_list("pk", "packing").first())
    if row is None:
        return None
    return Listed(row[0], message_ids({row[0]: row[1]})[row[0]], row[1].get("depth", 0))


def pack_events(events: list[Event], cache) -> tuple[list[tuple[Event, Any, Any, list[int], list[str]]], list]:
    """Store the repeated parts of these unsaved events apart. Returns what ``restore`` puts back after
    the insert, so the caller keeps whole events (with their message uses' ids and stored JSON), and
    the messages stored for the first time (``(message id, message)``). ``cache``: the writer's RowCache."""
    packable = [(event, messages) for event in events if (messages := _messages_of(event)) is not None]
    created: list = []
    if not packable:
        return [], created
    versions = _version_values({e.agent_version_id for e, _ in packable if e.agent_version_id})
    originals = []
    for event, messages in packable:
        try:
            texts = [jsontext.dumps(message) for message in messages]
        except (TypeError, ValueError):
            continue
        ids = _blob_ids(event.trace_id, texts, messages, created, cache.blobs.setdefault(event.trace_id, {}))
        originals.append((event, event.content, event.metadata, ids, texts))
        if event.trace_id not in cache.message_lists:
            cache.message_lists[event.trace_id] = _last_listed(event.trace_id)
        content = event.content
        event.content = {k: (None if k == "messages" else v) for k, v in content.items()} if isinstance(content, dict) else None
        event.packing = _list_packing(ids, cache.message_lists[event.trace_id])
        if keys := _pack_metadata(event, versions):
            event.packing["version"] = keys
    return originals, created


def restore(originals: list[tuple[Event, Any, Any, list[int], list[str]]], cache) -> None:
    """Put back what ``pack_events`` left out (after ``unpatch_metadata``)."""
    for event, content, metadata, ids, _ in originals:
        cache.message_lists[event.trace_id] = Listed(event.pk, ids, event.packing.get("depth", 0))
        event.content, event.metadata, event.packing = content, metadata, None


def message_ids(packings: dict[int, dict[str, Any]]) -> dict[int, list[int]]:
    """Each packed event's message ids, fetching the events their lists continue (a round per link)."""
    packings = dict(packings)
    while missing := {p["after"] for p in packings.values() if "after" in p} - packings.keys():
        packings.update(Event.objects.filter(pk__in=missing).values_list("pk", "packing"))
    ids: dict[int, list[int]] = {}
    for pk in sorted(packings):  # a list continues an earlier event's
        packing = packings[pk]
        before = ids[packing["after"]][:packing["keep"]] if "after" in packing else []
        ids[pk] = before + delta.ids_of(packing.get("messages") or [])
    return ids


def _blob_values(ids: set[int]) -> dict[int, Any]:
    return {pk: jsontext.loads(text) for pk, text in message_texts(ids).items()}


def unpack_events(events: list[Event]) -> None:
    """Put back what ``pack_events`` stored apart, in place (a few queries for any number of events)."""
    packed = {event.pk: event for event in events if event.packing}
    if not packed:
        return
    _unpatch_stored(events, [event for event in packed.values() if "like" in event.packing])
    ids = message_ids({pk: event.packing for pk, event in packed.items() if "messages" in event.packing})
    blobs = _blob_values({blob for pk in packed if pk in ids for blob in ids[pk]})
    versions = _version_values({e.agent_version_id for e in packed.values() if e.packing.get("version")})
    for pk, event in packed.items():
        if pk in ids:
            messages = [blobs[blob] for blob in ids[pk]]
            content = event.content
            event.content = ({k: (messages if k == "messages" else v) for k, v in content.items()}
                             if isinstance(content, dict) else messages)
        if keys := event.packing.get("version"):
            held = versions.get(event.agent_version_id, {})
            event.metadata = {k: (held.get(k) if k in keys else v) for k, v in event.metadata.items()}
        event.packing = None


# Metadata ----------------------------------------------------------------------------------------
# An event's metadata is mostly its trace's first one's of the same kind (a chat call's model,
# provider, parameters and usage's keys; only counts and time change): stored as a merge patch of
# that one's (``delta.patch``), ``packing["like"]`` naming it. A growing history's event table: 291 ->
# 156 KB (bench/storage.py), for ~7 us an event in the writer on bench/ingest.py's events (2-core
# machine). OTLP events stay whole: their parent span is read from it in SQL (otlp/store.py).

# '"like": 123456, ' in the packing, and a packing's braces: a patch saving less is not worth it,
# nor is looking for one in shorter metadata (a tool call's name and time).
_LIKE_COST = 24
_WORTH_PATCHING = 2 * _LIKE_COST


def _first_of_kind(trace_pk: int, kind: str) -> tuple[int, Any] | None:
    return (Event.objects.filter(trace_id=trace_pk, event_type=kind).order_by("pk")
            .values_list("pk", "metadata").first())


def patch_metadata(events: list[Event], cache) -> list[tuple[Event, Any, Any]]:
    """Store these unsaved events' metadata as patches of their trace's first event of each kind (the
    first ones, stored whole, become the bases once inserted: ``unpatch_metadata``). Returns what
    ``unpatch_metadata`` puts back. Call after ``pack_events``: it patches the metadata as stored."""
    patched = []
    bases = cache.metadata_bases
    ordered = connection.vendor != "postgresql"  # jsonb keeps no dict's order: a base read back has another
    for event in events:
        metadata = event.metadata
        if event.source == Event.SOURCE_OTLP or not isinstance(metadata, dict) or not metadata:
            continue
        key = (event.trace_id, event.event_type)
        if key not in bases:
            bases[key] = _first_of_kind(*key)
        base = bases[key]
        if base is None:
            bases[key] = event  # the trace's first of its kind: stored whole, the next ones' base
            continue
        if isinstance(base, Event) or not isinstance(base[1], dict):
            continue  # a base still to be inserted, with these events
        try:
            whole = len(orjson.dumps(metadata))
        except TypeError:  # what only json writes: rare enough to store whole
            continue
        if whole < _WORTH_PATCHING or (found := delta.patch(base[1], metadata, ordered)) is None:
            continue
        if len(orjson.dumps(found)) + _LIKE_COST > whole:
            continue
        patched.append((event, metadata, event.packing))
        event.metadata, event.packing = found, {**(event.packing or {}), "like": base[0]}
    return patched


def unpatch_metadata(patched: list[tuple[Event, Any, Any]], events: list[Event], cache) -> None:
    """After the insert: the events' metadata and packing back as they were, and the bases inserted
    with them kept, with their stored metadata, for the next events."""
    for event, metadata, packing in patched:
        event.metadata, event.packing = metadata, packing
    bases = cache.metadata_bases
    for event in events:
        key = (event.trace_id, event.event_type)
        if bases.get(key) is event:
            bases[key] = (event.pk, event.metadata)


def _unpatch_stored(events: list[Event], patched: list[Event]) -> None:
    """Patched stored events' metadata, whole again, from their bases' as stored (before anything
    else of theirs is put back)."""
    if not patched:
        return
    stored = {event.pk: event.metadata for event in events}
    missing = list({event.packing["like"] for event in patched} - stored.keys())
    for start in range(0, len(missing), _IN_CHUNK):
        stored.update(Event.objects.filter(pk__in=missing[start:start + _IN_CHUNK]).values_list("pk", "metadata"))
    for event in patched:
        event.metadata = delta.patched(stored[event.packing["like"]], event.metadata)

"""Smaller storage. Exchanges keep their headers and response body as what changed from their trace's
first exchange (storage/content.py ``pack``), and may name messages their request is squeezed with;
messages get a text index apart from events' (storage/search.py). Converts what is stored, and back."""

from django.db import migrations, models

from whyops_local.domain import delta
from whyops_local.storage import content


# The most messages a request is squeezed with here (the writer takes as many as its new bytes hold).
_SAID = 8


def _uses_by_exchange(Event) -> dict[int, list[int]]:
    """The message uses (``MessageBlob`` ids) of each exchange's packed event."""
    rows = list(Event.objects.filter(exchange__isnull=False, packing__isnull=False)
                .values_list("pk", "exchange_id", "packing"))
    ids = content.message_ids({pk: packing for pk, _, packing in rows if "messages" in packing})
    return {exchange: ids[pk] for pk, exchange, _ in rows if pk in ids}


def pack(apps, schema_editor) -> None:
    Exchange, Event = apps.get_model("whyops_local", "Exchange"), apps.get_model("whyops_local", "Event")
    trace_of = dict(Event.objects.filter(exchange__isnull=False).values_list("exchange_id", "trace_id"))
    uses = _uses_by_exchange(Event)
    newest: dict[int, content.Known] = {}  # by trace
    for exchange in Exchange.objects.order_by("pk").iterator(chunk_size=200):
        trace = trace_of.get(exchange.pk)
        data, base = delta.unsqueeze(bytes(exchange.request_data)), newest.get(trace)
        if exchange.request_base is not None:
            before = (base.body if base is not None and base.exchange_id == exchange.request_base
                      else content.request_bodies([exchange.request_base])[exchange.request_base])
            data = delta.join(before, exchange.request_prefix, exchange.request_suffix, data)
        said = uses.get(exchange.pk, [])[-_SAID:]
        messages = content.message_texts(set(said))
        exchange.response_data = delta.unsqueeze(bytes(exchange.response_data))
        known = content.store_exchange(exchange, data, base, said, [messages[pk].decode() for pk in said])
        if trace is not None:
            newest[trace] = known.stored_as(exchange.pk)
        exchange.save(update_fields=["request_base", "request_prefix", "request_suffix", "request_data",
                                     "request_dictionary", "pack_base", "request_head", "response_head", "response_data"])


def unpack(apps, schema_editor) -> None:
    Exchange = apps.get_model("whyops_local", "Exchange")
    anchors: dict[int, content.Parts] = {}
    for exchange in Exchange.objects.order_by("pk").iterator(chunk_size=200):
        if exchange.pack_base is not None and exchange.pack_base not in anchors:
            anchors[exchange.pack_base] = content.whole(Exchange.objects.get(pk=exchange.pack_base), None)
        whole = content.whole(exchange, anchors.get(exchange.pack_base))
        exchange.request_head, exchange.response_head = whole.request_headers, whole.response_headers
        exchange.pack_base, exchange.response_data = None, delta.squeeze(whole.response)
        dictionary = exchange.request_dictionary
        texts = content.message_texts(set(delta.ids_of(dictionary or [])))
        exchange.request_data = delta.squeeze(content.unsqueeze_request(bytes(exchange.request_data), dictionary, texts))
        exchange.request_dictionary = None
        exchange.save(update_fields=["request_data", "request_dictionary", "pack_base", "request_head", "response_head",
                                     "response_data"])


EVENT_VIEW = ("CREATE VIEW whyops_search_source AS SELECT id, trace_id AS trace,"
              " whyops_stored_text(content, packing IS NOT NULL) AS body FROM whyops_local_event")
FTS = "tokenize='trigram', detail='none', columnsize=0"
SQLITE = [
    "DROP TABLE whyops_search",
    "DROP VIEW whyops_search_source",
    EVENT_VIEW,
    "CREATE VIEW whyops_message_search_source AS SELECT id, whyops_stored_text(data, 0) AS body FROM whyops_local_message",
    f"CREATE VIRTUAL TABLE whyops_search USING fts5(trace UNINDEXED, body, content='whyops_search_source',"
    f" content_rowid='id', {FTS})",
    f"CREATE VIRTUAL TABLE whyops_message_search USING fts5(body, content='whyops_message_search_source',"
    f" content_rowid='id', {FTS})",
    # Segments merged three at a time rather than four: a growing history's index 131 -> 115 KB, its
    # inserts no slower (measured on bench/storage.py's messages, one transaction a call).
    "INSERT INTO whyops_message_search (whyops_message_search, rank) VALUES ('automerge', 3)",
    # As storage/search.py indexes: a row with no text is not indexed (nor told to the index when deleted).
    "INSERT INTO whyops_search (rowid, trace, body) SELECT id, trace, body FROM whyops_search_source WHERE body != ''",
    "INSERT INTO whyops_message_search (rowid, body) SELECT id, body FROM whyops_message_search_source WHERE body != ''",
]
SQLITE_UNDO = [
    "DROP TABLE whyops_message_search",
    "DROP VIEW whyops_message_search_source",
    "DROP TABLE whyops_search",
    "DROP VIEW whyops_search_source",
    "CREATE VIEW whyops_search_source AS"
    " SELECT -id AS id, NULL AS trace, whyops_stored_text(data, 0) AS body FROM whyops_local_message"
    " UNION ALL SELECT id, trace_id, whyops_stored_text(content, packing IS NOT NULL) FROM whyops_local_event",
    f"CREATE VIRTUAL TABLE whyops_search USING fts5(trace UNINDEXED, body, content='whyops_search_source',"
    f" content_rowid='id', {FTS})",
    "INSERT INTO whyops_search (rowid, trace, body) SELECT id, trace, body FROM whyops_search_source WHERE body != ''",
]
POSTGRESQL = [
    "CREATE TABLE whyops_message_search (rowid bigint PRIMARY KEY, body text NOT NULL)",
    "CREATE INDEX whyops_message_search_body ON whyops_message_search USING gin (body gin_trgm_ops)",
    "INSERT INTO whyops_message_search (rowid, body) SELECT -rowid, body FROM whyops_search WHERE rowid < 0",
    "DELETE FROM whyops_search WHERE rowid < 0",
]
POSTGRESQL_UNDO = [
    "INSERT INTO whyops_search (rowid, trace, body) SELECT -rowid, NULL, body FROM whyops_message_search",
    "DROP TABLE whyops_message_search",
]


def _run(by_vendor):
    def run(apps, schema_editor) -> None:
        for statement in by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("whyops_local", "0011_otel_conversations"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RenameField("exchange", "request_headers", "request_head"),
            migrations.AlterField("exchange", "request_head", models.JSONField(default=dict, db_column="request_headers")),
            migrations.RenameField("exchange", "response_headers", "response_head"),
            migrations.AlterField("exchange", "response_head", models.JSONField(default=dict, db_column="response_headers")),
        ]),
        migrations.AddField("exchange", "pack_base", models.BigIntegerField(null=True)),
        migrations.AddField("exchange", "request_dictionary", models.JSONField(null=True)),
        migrations.RunPython(pack, unpack),
        migrations.RunPython(_run({"sqlite": SQLITE, "postgresql": POSTGRESQL}),
                             _run({"sqlite": SQLITE_UNDO, "postgresql": POSTGRESQL_UNDO})),
    ]

"""Search through an index everywhere (storage/search.py): trace ids in an FTS5 table of their own on
SQLite; on PostgreSQL the search text in a table with pg_trgm GIN indexes, and the trace ids too."""

from django.db import migrations

from whyops_local.storage.search import stored_rows

SQLITE = [
    "CREATE VIRTUAL TABLE whyops_trace_search USING fts5(trace_id, content='whyops_local_trace', content_rowid='id',"
    " tokenize='trigram', detail='none')",
    "INSERT INTO whyops_trace_search (whyops_trace_search) VALUES ('rebuild')",
    "CREATE TRIGGER whyops_trace_search_insert AFTER INSERT ON whyops_local_trace BEGIN"
    " INSERT INTO whyops_trace_search (rowid, trace_id) VALUES (new.id, new.trace_id); END",
    "CREATE TRIGGER whyops_trace_search_delete AFTER DELETE ON whyops_local_trace BEGIN"
    " INSERT INTO whyops_trace_search (whyops_trace_search, rowid, trace_id) VALUES ('delete', old.id, old.trace_id); END",
    "CREATE TRIGGER whyops_trace_search_update AFTER UPDATE OF trace_id ON whyops_local_trace BEGIN"
    " INSERT INTO whyops_trace_search (whyops_trace_search, rowid, trace_id) VALUES ('delete', old.id, old.trace_id);"
    " INSERT INTO whyops_trace_search (rowid, trace_id) VALUES (new.id, new.trace_id); END",
]
SQLITE_UNDO = ["DROP TRIGGER whyops_trace_search_update", "DROP TRIGGER whyops_trace_search_delete",
               "DROP TRIGGER whyops_trace_search_insert", "DROP TABLE whyops_trace_search"]
# pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
POSTGRESQL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE TABLE whyops_search (rowid bigint PRIMARY KEY, trace bigint, body text NOT NULL)",
    "CREATE INDEX whyops_search_trace ON whyops_search (trace)",
    "CREATE INDEX whyops_search_body ON whyops_search USING gin (body gin_trgm_ops)",
    "CREATE INDEX whyops_trace_id_search ON whyops_local_trace USING gin (trace_id gin_trgm_ops)",
]
POSTGRESQL_UNDO = ["DROP INDEX whyops_trace_id_search", "DROP TABLE whyops_search"]


def create(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for statement in {"sqlite": SQLITE, "postgresql": POSTGRESQL}.get(vendor, []):
        schema_editor.execute(statement)
    if vendor == "postgresql":
        rows = stored_rows(apps.get_model("whyops_local", "Event"), apps.get_model("whyops_local", "MessageBlob"))
        with schema_editor.connection.cursor() as cursor:
            cursor.executemany("INSERT INTO whyops_search (rowid, trace, body) VALUES (%s, %s, %s)",
                               list(rows))


def drop(apps, schema_editor) -> None:
    for statement in {"sqlite": SQLITE_UNDO, "postgresql": POSTGRESQL_UNDO}.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ("whyops_local", "0007_otlp"),
    ]

    operations = [migrations.RunPython(create, drop)]

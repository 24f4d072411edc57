"""SQLite's text index keeps no copy of the text (storage/search.py): it reads it from the stored
messages and events through a view, and keeps no column sizes (no query ranks by them)."""

from django.db import migrations

VIEW = (
    "CREATE VIEW whyops_search_source AS"
    " SELECT -id AS id, NULL AS trace, whyops_stored_text(data, 0) AS body FROM whyops_local_message"
    " UNION ALL SELECT id, trace_id, whyops_stored_text(content, packing IS NOT NULL) FROM whyops_local_event"
)
FORWARD = [
    "DROP TABLE whyops_search",
    VIEW,
    "CREATE VIRTUAL TABLE whyops_search USING fts5(trace UNINDEXED, body, content='whyops_search_source',"
    " content_rowid='id', tokenize='trigram', detail='none', columnsize=0)",
    # As storage/search.py indexes: a row with no text is not indexed (nor told to the index when deleted).
    "INSERT INTO whyops_search (rowid, trace, body) SELECT id, trace, body FROM whyops_search_source WHERE body != ''",
]
BACKWARD = [
    "CREATE VIRTUAL TABLE whyops_search_copy USING fts5(trace UNINDEXED, body, tokenize='trigram', detail='none')",
    "INSERT INTO whyops_search_copy (rowid, trace, body) SELECT id, trace, body FROM whyops_search_source WHERE body != ''",
    "DROP TABLE whyops_search",
    "DROP VIEW whyops_search_source",
    "ALTER TABLE whyops_search_copy RENAME TO whyops_search",
]


def _run(statements):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "sqlite":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("whyops_local", "0009_shared_messages"),
    ]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]

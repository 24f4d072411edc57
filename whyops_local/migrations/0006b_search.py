"""Full-text search (storage/search.py): an FTS5 trigram table on SQLite, filled from what is stored."""

from django.db import migrations

from whyops_local.storage.search import stored_rows


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("CREATE VIRTUAL TABLE IF NOT EXISTS whyops_search USING fts5(trace UNINDEXED, body, tokenize='trigram', detail='none')")
        for row in stored_rows(apps.get_model("whyops_local", "Event"), apps.get_model("whyops_local", "MessageBlob")):
            cursor.execute("INSERT INTO whyops_search (rowid, trace, body) VALUES (%s, %s, %s)", row)


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TABLE IF EXISTS whyops_search")


class Migration(migrations.Migration):

    dependencies = [
        ("whyops_local", "0006_content_store"),
    ]

    operations = [migrations.RunPython(create, drop)]

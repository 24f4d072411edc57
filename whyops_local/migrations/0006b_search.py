"""Full-text search (storage/search.py): an FTS5 trigram table on SQLite, filled from what is stored."""

from django.db import migrations

from whyops_local.domain import jsontext
from whyops_local.domain.searchtext import text_of


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "sqlite":
        return
    Event, MessageBlob = apps.get_model("whyops_local", "Event"), apps.get_model("whyops_local", "MessageBlob")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("CREATE VIRTUAL TABLE IF NOT EXISTS whyops_search USING fts5(trace UNINDEXED, body, tokenize='trigram', detail='none')")
        for pk, trace, data in MessageBlob.objects.values_list("pk", "trace_id", "data").iterator():
            cursor.execute("INSERT INTO whyops_search (rowid, trace, body) VALUES (%s, %s, %s)",
                           [-pk, trace, text_of(jsontext.loads(data))])
        for pk, trace, content, packing in Event.objects.values_list("pk", "trace_id", "content", "packing").iterator():
            if packing and isinstance(content, dict):
                content = {k: v for k, v in content.items() if k != "messages"}
            if text := text_of(None if packing and not isinstance(content, dict) else content):
                cursor.execute("INSERT INTO whyops_search (rowid, trace, body) VALUES (%s, %s, %s)", [pk, trace, text])


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TABLE IF EXISTS whyops_search")


class Migration(migrations.Migration):

    dependencies = [
        ("whyops_local", "0006_content_store"),
    ]

    operations = [migrations.RunPython(create, drop)]

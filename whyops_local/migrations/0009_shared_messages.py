"""Each distinct message stored once in the database (storage/content.py), not once per trace: the
per-trace rows (``MessageBlob``) become a trace's uses of a shared ``Message`` (its JSON squeezed),
keeping their ids (which events' message lists hold), and the search index gets a row per message."""

from django.db import migrations, models

from whyops_local.domain import delta, jsontext
from whyops_local.domain.searchtext import text_of

_BATCH = 500


def _index(schema_editor, rows) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DELETE FROM whyops_search WHERE rowid < 0")
        cursor.executemany("INSERT INTO whyops_search (rowid, trace, body) VALUES (%s, %s, %s)",
                           [(rowid, trace, text) for rowid, trace, data in rows if (text := text_of(jsontext.loads(data)))])


def share(apps, schema_editor) -> None:
    Message, MessageBlob = apps.get_model("whyops_local", "Message"), apps.get_model("whyops_local", "MessageBlob")
    ids: dict[bytes, int] = {}
    for blob in MessageBlob.objects.order_by("pk").iterator(chunk_size=_BATCH):
        digest = bytes(blob.digest)
        if digest not in ids:
            ids[digest] = Message.objects.create(digest=digest, data=delta.squeeze(blob.data.encode())).pk
        MessageBlob.objects.filter(pk=blob.pk).update(message_id=ids[digest])
    _index(schema_editor, ((-pk, None, delta.unsqueeze(bytes(data)).decode())
                           for pk, data in Message.objects.values_list("pk", "data").iterator()))


def unshare(apps, schema_editor) -> None:
    MessageBlob = apps.get_model("whyops_local", "MessageBlob")
    for blob in MessageBlob.objects.select_related("message").iterator(chunk_size=_BATCH):
        MessageBlob.objects.filter(pk=blob.pk).update(digest=blob.message.digest,
                                                      data=delta.unsqueeze(bytes(blob.message.data)).decode())
    _index(schema_editor, ((-pk, trace, data) for pk, trace, data in
                           MessageBlob.objects.values_list("pk", "trace_id", "data").iterator()))


class Migration(migrations.Migration):

    dependencies = [
        ("whyops_local", "0008_search_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="Message",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("digest", models.BinaryField(max_length=16, unique=True)),
                ("data", models.BinaryField()),
            ],
        ),
        migrations.RemoveConstraint(model_name="messageblob", name="message_blob_digest_unique"),
        migrations.AddField(
            model_name="messageblob", name="message",
            field=models.ForeignKey(null=True, on_delete=models.deletion.PROTECT, related_name="uses",
                                    to="whyops_local.message"),
        ),
        migrations.RunPython(share, unshare),
        migrations.RemoveField(model_name="messageblob", name="digest"),
        migrations.RemoveField(model_name="messageblob", name="data"),
        migrations.AlterField(
            model_name="messageblob", name="message",
            field=models.ForeignKey(on_delete=models.deletion.PROTECT, related_name="uses", to="whyops_local.message"),
        ),
        migrations.AddConstraint(
            model_name="messageblob",
            constraint=models.UniqueConstraint(fields=("trace", "message"), name="message_blob_use_unique"),
        ),
    ]

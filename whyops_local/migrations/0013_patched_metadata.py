"""Smaller events. An event's metadata may be stored as a patch of its trace's first event's of the same
kind (storage/content.py ``patch_metadata``), named by ``packing["like"]``: so a packing no longer means
that messages are stored apart, and the search view asks for those. Nothing stored changes going
forward; going back, patched metadata is made whole.
Events no longer keep when they were received (nothing read it: 26 bytes an event), and agent
versions lose an index the unique (agent, version_hash) one holds."""

import django.db.models.deletion
from django.db import migrations, models

from whyops_local.domain import delta


_DROP_VIEW = ["DROP VIEW whyops_search_source"]


def _view(packed: str) -> list[str]:
    return ["CREATE VIEW whyops_search_source AS SELECT id, trace_id AS trace,"
            f" whyops_stored_text(content, {packed}) AS body FROM whyops_local_event"]


def _run(statements):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "sqlite":
            for statement in statements:
                schema_editor.execute(statement)

    return run


def _whole(apps, schema_editor) -> None:
    Event = apps.get_model("whyops_local", "Event")
    patched = list(Event.objects.filter(packing__has_key="like").values_list("pk", "metadata", "packing"))
    bases = dict(Event.objects.filter(pk__in={packing["like"] for _, _, packing in patched})
                 .values_list("pk", "metadata"))
    for pk, metadata, packing in patched:
        rest = {key: value for key, value in packing.items() if key != "like"}
        Event.objects.filter(pk=pk).update(metadata=delta.patched(bases[packing["like"]], metadata),
                                           packing=rest or None)


class Migration(migrations.Migration):

    dependencies = [
        ("whyops_local", "0012_packed_exchanges"),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, _whole),
        # Without the view while the event table changes: SQLite remakes it to add a column back.
        migrations.RunPython(_run(_DROP_VIEW), _run(_view("packing IS NOT NULL"))),
        migrations.RemoveField("event", "received_at"),
        migrations.AlterField("agentversion", "agent", models.ForeignKey(
            db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="versions",
            to="whyops_local.agent")),
        migrations.RunPython(_run(_view("json_type(packing, '$.messages') IS NOT NULL")), _run(_DROP_VIEW)),
    ]

"""Exchanges keep their headers and response body as what changed from their trace's first exchange
(storage/content.py ``pack``). Converts what is stored, and back."""

from django.db import migrations, models

from whyops_local.domain import delta
from whyops_local.storage import content


def _exchanges_by_trace(apps):
    Exchange, Event = apps.get_model("whyops_local", "Exchange"), apps.get_model("whyops_local", "Event")
    trace_of = dict(Event.objects.filter(exchange__isnull=False).values_list("exchange_id", "trace_id"))
    return trace_of, Exchange.objects.order_by("pk")


def pack(apps, schema_editor) -> None:
    trace_of, exchanges = _exchanges_by_trace(apps)
    anchors: dict[int, content.Parts | None] = {}
    for exchange in exchanges.iterator(chunk_size=200):
        trace = trace_of.get(exchange.pk)
        anchor = content.pack(exchange, content.whole(exchange, None), anchors.get(trace))
        if anchor is not None and anchor.exchange_id is None:
            anchor.exchange_id = exchange.pk
        if trace is not None:
            anchors[trace] = anchor
        exchange.save(update_fields=["pack_base", "request_head", "response_head", "response_data"])


def unpack(apps, schema_editor) -> None:
    Exchange = apps.get_model("whyops_local", "Exchange")
    anchors: dict[int, content.Parts] = {}
    for exchange in Exchange.objects.order_by("pk").iterator(chunk_size=200):
        if exchange.pack_base is not None and exchange.pack_base not in anchors:
            anchors[exchange.pack_base] = content.whole(Exchange.objects.get(pk=exchange.pack_base), None)
        whole = content.whole(exchange, anchors.get(exchange.pack_base))
        exchange.request_head, exchange.response_head = whole.request_headers, whole.response_headers
        exchange.pack_base, exchange.response_data = None, delta.squeeze(whole.response)
        exchange.save(update_fields=["pack_base", "request_head", "response_head", "response_data"])


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
    ]

"""Repeated content stored once (storage/content.py): raw bodies as bytes, request bodies as deltas of
their trace's previous one, messages of a conversation once per trace. Converts what is stored."""

from django.db import migrations, models

from whyops_local.domain import delta, jsontext

PACKED_KINDS = ("user_message", "tool_result")


def _convert_exchanges(Exchange, Event) -> None:
    trace_of = dict(Event.objects.filter(exchange__isnull=False).values_list("exchange_id", "trace_id"))
    previous: dict[int, tuple[int, bytes, int]] = {}  # trace -> (exchange id, body, depth)
    for exchange in Exchange.objects.order_by("pk").iterator(chunk_size=200):
        body = exchange.request_body.encode()
        base = previous.get(trace_of.get(exchange.pk))
        exchange.request_data, depth = delta.squeeze(body), 0
        if base is not None and base[2] < 500:
            prefix, suffix, middle = delta.split(base[1], body)
            if prefix + suffix >= len(body) // 2:
                exchange.request_base, exchange.request_prefix, exchange.request_suffix = base[0], prefix, suffix
                exchange.request_data, depth = delta.squeeze(middle), base[2] + 1
        if exchange.pk in trace_of:
            previous[trace_of[exchange.pk]] = (exchange.pk, body, depth)
        exchange.response_data = delta.squeeze(exchange.response_body.encode())
        exchange.chunk_marks = None if exchange.chunks is None else [[ms, len(text)] for ms, text in exchange.chunks]
        exchange.save(update_fields=["request_base", "request_prefix", "request_suffix", "request_data",
                                     "response_data", "chunk_marks"])


def _convert_events(Event, MessageBlob) -> None:
    have: dict[tuple[int, bytes], int] = {}
    for event in Event.objects.filter(event_type__in=PACKED_KINDS).order_by("pk").iterator(chunk_size=200):
        content = event.content
        messages = content.get("messages") if isinstance(content, dict) else content
        if not isinstance(messages, list) or len(messages) < 2:
            continue
        ids = []
        for message in messages:
            text = jsontext.dumps(message)
            key = (event.trace_id, delta.digest(text.encode()))
            if key not in have:
                have[key] = MessageBlob.objects.create(trace_id=event.trace_id, digest=key[1], data=text).pk
            ids.append(have[key])
        event.content = {k: (None if k == "messages" else v) for k, v in content.items()} if isinstance(content, dict) else None
        event.packing = {"messages": delta.runs(ids)}
        event.save(update_fields=["content", "packing"])


def convert(apps, schema_editor) -> None:
    Event = apps.get_model("whyops_local", "Event")
    _convert_exchanges(apps.get_model("whyops_local", "Exchange"), Event)
    _convert_events(Event, apps.get_model("whyops_local", "MessageBlob"))


class Migration(migrations.Migration):

    dependencies = [
        ("whyops_local", "0005_flags"),
    ]

    operations = [
        migrations.AddField("exchange", "request_base", models.BigIntegerField(null=True)),
        migrations.AddField("exchange", "request_prefix", models.PositiveIntegerField(default=0)),
        migrations.AddField("exchange", "request_suffix", models.PositiveIntegerField(default=0)),
        migrations.AddField("exchange", "request_data", models.BinaryField(default=b"")),
        migrations.AddField("exchange", "response_data", models.BinaryField(default=b"")),
        migrations.AddField("exchange", "chunk_marks", models.JSONField(null=True)),
        migrations.AddField("event", "packing", models.JSONField(null=True)),
        migrations.CreateModel(
            name="MessageBlob",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("digest", models.BinaryField(max_length=16)),
                ("data", models.TextField()),
                ("trace", models.ForeignKey(db_index=False, on_delete=models.deletion.CASCADE, related_name="+",
                                            to="whyops_local.trace")),
            ],
            options={"constraints": [models.UniqueConstraint(fields=("trace", "digest"), name="message_blob_digest_unique")]},
        ),
        migrations.RunPython(convert, migrations.RunPython.noop),
        migrations.RemoveField("exchange", "request_body"),
        migrations.RemoveField("exchange", "response_body"),
        migrations.RemoveField("exchange", "chunks"),
    ]

"""Token counts in one meaning whatever the provider: input is the uncached part (OpenAI's prompt
tokens included the cached ones, Anthropic's did not), cache writes for an hour and reasoning tokens
counted apart. Existing rows are converted with the rule pricing applies, from their usage as reported."""

from django.db import migrations, models
from django.db.models import F, Sum, Value
from django.db.models.functions import Greatest

from whyops_local.domain import pricing

_RENAMED = (("prompt_tokens", "input_tokens"), ("completion_tokens", "output_tokens"),
            ("cache_creation_tokens", "cache_write_tokens"))
_SUMMED = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "output_tokens",
           "reasoning_tokens", "total_tokens")


def _convert(apps, schema_editor) -> None:
    Event = apps.get_model("whyops_local", "Event")
    Trace = apps.get_model("whyops_local", "Trace")
    pairs = list(Event.objects.order_by().values_list("provider", "model").distinct())
    for provider, model in pairs:
        if not pricing.cache_on_top(*pricing.split_model(provider, model)):
            Event.objects.filter(provider=provider, model=model).update(
                input_tokens=Greatest(F("input_tokens") - F("cache_read_tokens") - F("cache_write_tokens"), Value(0)))
    for provider, model in pairs:  # after all conversions: a renamed pair may be one still to convert
        canonical = pricing.split_model(provider, model)
        if canonical != (provider, model):
            Event.objects.filter(provider=provider, model=model).update(provider=canonical[0], model=canonical[1])
    for event in Event.objects.filter(metadata__usage__has_any_keys=["cacheCreation1hTokens", "reasoningTokens"]):
        usage = (event.metadata or {}).get("usage") or {}
        tokens, _ = pricing.read_usage(event.provider, event.model, event.event_type, usage)
        event.cache_write_1h_tokens, event.reasoning_tokens = tokens.cache_write_1h, tokens.reasoning
        event.save(update_fields=["cache_write_1h_tokens", "reasoning_tokens"])
    Event.objects.update(total_tokens=F("input_tokens") + F("cache_read_tokens") + F("cache_write_tokens")
                         + F("output_tokens"))
    sums = Event.objects.order_by().values("trace").annotate(**{f"sum_{name}": Sum(name) for name in _SUMMED})
    by_trace = {row["trace"]: row for row in sums}
    names: dict[int, dict[str, None]] = {}
    named = Event.objects.exclude(model="").order_by("trace", "pk").values_list("trace", "provider", "model")
    for trace, provider, model in named.iterator():
        names.setdefault(trace, {})[pricing.model_name(provider, model)] = None
    for trace in Trace.objects.all().iterator():
        row = by_trace.get(trace.pk, {})
        for name in _SUMMED:
            setattr(trace, name, row.get(f"sum_{name}") or 0)
        trace.model_names = list(names.get(trace.pk, {}))
        trace.save(update_fields=[*_SUMMED, "model_names"])


class Migration(migrations.Migration):
    dependencies = [("whyops_local", "0003_event_type_choices")]

    operations = [
        *(migrations.RenameField(model, old, new) for model in ("event", "trace") for old, new in _RENAMED),
        *(migrations.AddField(model, name, models.BigIntegerField(default=0))
          for model in ("event", "trace") for name in ("cache_write_1h_tokens", "reasoning_tokens")),
        migrations.RunPython(_convert, migrations.RunPython.noop),
    ]

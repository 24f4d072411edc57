"""A trace as one self-contained HTML file (for a bug report): inline CSS and script, no URL to load,
opens from disk without a server. The events are rendered here, escaped; the export document
(storage/exports.py) is embedded too, for whoever wants the raw data."""

from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string

from ..domain import jsontext
from ..domain.events import KIND_NAMES
from ..domain.searchtext import text_of
from ..models import Trace
from ..storage import exports
from ..storage.content import PACKED_KINDS
from ..storage.snapshot import snapshot


def _static(relative: str) -> str:
    return (Path(settings.BASE_DIR) / "static" / relative).read_text()


def _steps(document: dict) -> list[dict]:
    """What each event shows: a request only the messages its previous request did not have."""
    steps, seen = [], []
    for event in document["events"]:
        body = event["content"]
        messages = body.get("messages") if isinstance(body, dict) else body if event["eventType"] in PACKED_KINDS else None
        if isinstance(messages, list):
            new = messages[len(seen):] if messages[:len(seen)] == seen else messages
            seen = messages
            lines = [(m.get("role", ""), text_of({k: v for k, v in m.items() if k != "role"})) if isinstance(m, dict)
                     else ("", text_of(m)) for m in new]
        else:
            lines = [("", text_of(body))]
        steps.append({"event": event, "kind": KIND_NAMES.get(event["eventType"], event["eventType"]), "lines": lines})
    return steps


def standalone_html(trace: Trace) -> str:
    document = exports.export_trace(trace)
    return render_to_string("traces/standalone.html", {
        "trace": document["trace"], "steps": _steps(document), "document": document,
        "css": _static("css/base.css") + "\n" + _static("css/pages/trace.css") + "\n" + _static("css/pages/standalone.css"),
        "script": _static("js/pages/standalone.js"),
    })


@snapshot()  # the trace's totals and its events from one state, however fast it grows
def export_file(trace_id: str, html: bool) -> str | None:
    """The trace ``trace_id`` as a JSON document (``html``: one HTML file); None when there is none."""
    trace = Trace.objects.select_related("agent", "agent_version").filter(trace_id=trace_id).first()
    if trace is None:
        return None
    return standalone_html(trace) if html else jsontext.dumps(exports.export_trace(trace))

"""`/compare/?a=<traceId>&b=<traceId>`: two runs side by side, aligned step by step (domain.alignment).

Also reached as ``?t=<id>&t=<id>`` from the two rows ticked on a trace list.
"""

import difflib
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from ..domain import alignment
from ..models import Trace
from ..storage.analysis import run_events
from .site import page


def _prompt_diff(a: Trace, b: Trace) -> list[dict[str, str]] | None:
    """The system-prompt diff when the runs ran different versions of their agent."""
    if a.agent_version_id == b.agent_version_id or not (a.agent_version and b.agent_version):
        return None
    lines = difflib.unified_diff(a.agent_version.system_prompt.splitlines(), b.agent_version.system_prompt.splitlines(),
                                 f"v{a.agent_version.seq}", f"v{b.agent_version.seq}", lineterm="")
    kinds = {"+": "d-add", "-": "d-del", "@": "d-hunk"}
    return [{"kind": "d-file" if line[:3] in ("---", "+++") else kinds.get(line[:1], ""), "text": line} for line in lines]


def _with_answer_diffs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        a, b = row["a"], row["b"]
        if a and b and a["eventType"] == b["eventType"] == "llm_response" and a["text"] != b["text"]:
            row["answerDiff"] = alignment.text_diff(a["text"], b["text"])
    return rows


@page
def compare_page(request: HttpRequest) -> HttpResponse:
    picked = request.GET.getlist("t")
    if len(picked) == 2 and not request.GET.get("a"):
        return redirect(f"{reverse('compare')}?{urlencode({'a': picked[0], 'b': picked[1]})}")
    a_id, b_id = request.GET.get("a", ""), request.GET.get("b", "")
    if not a_id or not b_id:
        return render(request, "traces/compare.html", {"missing": True, "picked": len(picked)}, status=400)
    traces = Trace.objects.select_related("agent", "agent_version")
    a, b = get_object_or_404(traces, trace_id=a_id), get_object_or_404(traces, trace_id=b_id)
    compared = alignment.compare(a.summary_dict(), run_events(a), b.summary_dict(), run_events(b))
    return render(request, "traces/compare.html", {
        "a": a, "b": b, "compared": compared, "rows": _with_answer_diffs(compared["rows"]),
        "prompt_diff": _prompt_diff(a, b),
    })

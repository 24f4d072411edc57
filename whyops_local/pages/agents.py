"""`/agents/` and `/agents/<name>/`: versions with prompt and tools, a diff between two, usage per version."""

import difflib
import json
from typing import Any

from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from ..models import Agent, AgentVersion, Event, Trace
from ..storage.totals import no_events, totals, totals_by
from .display import parse_json_string
from .site import page, render


@page
def agent_list(request: HttpRequest) -> HttpResponse:
    agents = (
        Agent.objects.order_by("name")
        .annotate(version_count=Count("versions", distinct=True), last_version=Max("versions__seq"))
    )
    stats = totals_by(Event.objects.all(), "agent")
    rows = [{**stats.get(agent.pk, no_events()), "agent": agent} for agent in agents]
    return render(request, "agents/list.html", {"rows": rows})


def version_text(version: AgentVersion) -> str:
    """A version as diffable text: the system prompt, then each tool with its schemas pretty-printed."""
    lines = ["# system prompt", version.system_prompt or "(none)", "", "# description", version.description or "(none)",
             "", "# tools"]
    for tool in version.tools or []:
        tool = tool if isinstance(tool, dict) else {"name": tool}
        lines.append(f"## {tool.get('name')}")
        if tool.get("description"):
            lines.append(str(tool["description"]))
        for key in ("inputSchema", "outputSchema"):
            if tool.get(key) is not None:
                lines.append(f"{key}: " + json.dumps(parse_json_string(tool[key]), indent=2, sort_keys=True))
    return "\n".join(lines)


def diff_lines(old: AgentVersion, new: AgentVersion) -> list[dict[str, str]]:
    diff = difflib.unified_diff(version_text(old).splitlines(), version_text(new).splitlines(),
                                f"v{old.seq}", f"v{new.seq}", lineterm="", n=3)
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    return [{"kind": kinds.get(line[:1], "ctx") if not line.startswith(("+++", "---")) else "file", "text": line}
            for line in diff]


def _version_seq(value: str, default: int | None) -> int | None:
    try:
        return int(value.lstrip("v"))
    except (TypeError, ValueError, AttributeError):
        return default


@page
def agent_page(request: HttpRequest, name: str) -> HttpResponse:
    agent = get_object_or_404(Agent, name=name)
    versions = list(agent.versions.order_by("-seq"))
    stats = totals_by(agent.events.all(), "agent_version")
    rows: list[dict[str, Any]] = []
    for version in versions:
        tools = [
            {**tool, "input": parse_json_string(tool.get("inputSchema")), "output": parse_json_string(tool.get("outputSchema"))}
            for tool in version.tools or [] if isinstance(tool, dict)
        ]
        rows.append({"version": version, "tools": tools, **stats.get(version.pk, no_events())})
    by_seq = {version.seq: version for version in versions}
    newest = versions[0].seq if versions else None
    new_seq = _version_seq(request.GET.get("b"), newest)
    old_seq = _version_seq(request.GET.get("a"), (new_seq - 1) if new_seq else None)
    old, new = by_seq.get(old_seq), by_seq.get(new_seq)
    return render(request, "agents/detail.html", {
        "agent": agent,
        "rows": rows,
        "unversioned": stats.get(None),
        "totals": totals(agent.events.all()),
        "diff": diff_lines(old, new) if old and new and old != new else None,
        "diff_old": old,
        "diff_new": new,
        "traces": list(Trace.objects.filtered(agent=agent.name)[:20]),
    })

"""`/traces/<traceId>`: header strip, span tree with its waterfall, thread graph and the step panel (`?step=`).

The graph and the tree are computed by the pure ``graph`` and ``domain.waterfall`` modules and drawn by ES modules
from ``json_script`` data; the step panel is rendered here, for the page and as a fragment
(``?step=<id>&partial=panel``) that the page fetches on selection, so all untrusted content goes
through Django's autoescaping.
"""

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from ..domain import pricing
from ..domain.events import PRICED_EVENTS, STEP_KIND_NAMES, TOOL_EVENTS
from ..domain.spans import tool_spans
from ..domain.waterfall import build_tree
from ..live.messages import running_calls
from ..models import Event, Trace
from ..storage.analysis import call_context
from ..storage.snapshot import snapshot
from ..storage.totals import by_model
from . import display, exchange
from .conversation import conversation
from .graph import build_graph, node_id_for
from .site import page, render

# The conversation's item kinds a reader can hide.
INPUT_EVENTS = ("user_message", "tool_result")
KIND_FILTERS = [("input", "messages"), ("answer", "answers"), ("thinking", "thinking"), ("tool", "tools"),
                ("error", "errors")]


def _node_events(trace: Trace, node_id: str) -> list[Event]:
    """The events behind a node id: ``"12"`` (step 12, with the rest of its tool span) or ``"12-345"``."""
    step, _, pk = node_id.partition("-")
    try:
        step_id, event_pk = int(step), int(pk) if pk else None
    except ValueError:
        return []
    events = trace.events.select_related("exchange").order_by("step_id", "pk")
    first = (events.filter(pk=event_pk) if event_pk else events.filter(step_id=step_id)).first()
    if first is None:
        return []
    if first.event_type in TOOL_EVENTS:
        return list(events.filter(span_id=first.span_id, event_type__in=TOOL_EVENTS))
    return [first]


def _breakdown(event: Event) -> pricing.Breakdown | None:
    """How a priced call's cost was reached (None for one without a price, or nothing to price)."""
    if event.event_type not in PRICED_EVENTS or event.cost_usd is None:
        return None
    return pricing.breakdown(event.provider, event.model, event.tokens, settings.WHYOPS_PRICES_FILE)


def _describe(event: Event) -> dict[str, Any]:
    """What the panel shows for one event, by type; the template renders the blocks."""
    body = event.content if isinstance(event.content, dict) else {}
    kind = event.event_type
    metadata = event.metadata or {}
    # The provider's own usage object when the proxy kept it, else the usage the SDK sent.
    view: dict[str, Any] = {"event": event, "kind": kind, "usage": metadata.get("providerUsage") or metadata.get("usage"),
                            "priced": kind in PRICED_EVENTS, "breakdown": _breakdown(event)}
    if kind == "user_message":
        view["transcript"] = display.transcript(event.content)
        view["system_prompt"] = (event.metadata or {}).get("systemPrompt")
        view["tools"] = (event.metadata or {}).get("tools")
        view["params"] = (event.metadata or {}).get("params")
    elif kind == "llm_response":
        view["answer"] = display.blocks(body.get("content")) if isinstance(event.content, dict) else display.blocks(event.content)
        view["tool_calls"] = [display.tool_call(call) for call in body.get("toolCalls") or []]
        view["finish_reason"] = body.get("finishReason")
        view["context"] = call_context(event.trace, event.step_id)
        view["input"] = _input_of(event)
        view["line"] = {"model": event.model, "latencyMs": event.latency_ms, "costUsd": event.cost_usd,
                        "costNote": event.cost_note, "tokens": _line_tokens(event)}
    elif kind == "llm_thinking":
        view["thinking"] = display.thinking_block(event.content)
    elif kind == "tool_result":
        view["tool_name"] = body.get("toolName")
        view["results"] = display.tool_results(event.content)
        view["output"] = body.get("output", event.content)
    elif kind == "embedding_request":
        inputs = body.get("input")
        view["inputs"] = inputs if isinstance(inputs, list) else [inputs]
    elif kind == "error":
        view["message"] = body.get("message", event.content if not body else None)
        view["status"] = body.get("status")
        view["stack"] = body.get("stack")
    if event.exchange is not None:
        event.exchange.chunk_rows = exchange.chunk_rows(event.exchange.chunks)
        event.exchange.reassembled = exchange.reassembled(event.exchange.path, event.exchange.chunks)
    return view


def _line_tokens(event: Event) -> tuple[int, int, int, int]:
    """A call's compact line: uncached input, cache read, cache write, output (one meaning each)."""
    return event.input_tokens, event.cache_read_tokens, event.cache_write_tokens, event.output_tokens


def _input_of(answer: Event) -> dict[str, Any] | None:
    """The messages an LLM call was sent: its request's history, the new ones (since the request
    before it) apart, as a proxied request repeats everything."""
    inputs = answer.trace.events.filter(event_type__in=INPUT_EVENTS, step_id__lte=answer.step_id).order_by("-step_id", "-pk")
    latest = inputs.first()
    if latest is None:
        return None
    messages = display.transcript(latest.content)
    before = inputs.filter(step_id__lt=latest.step_id).only("content").first() if latest.source == Event.SOURCE_PROXY else None
    earlier = display.transcript(before.content) if before is not None else []
    seen = len(earlier) if len(earlier) < len(messages) else 0
    return {"event": latest, "new": messages[seen:], "all": messages, "earlier": seen > 0}


def panel_context(trace: Trace, node_id: str | None) -> dict[str, Any]:
    events = _node_events(trace, node_id) if node_id else []
    for event in events:
        event.trace = trace
    span = None
    if events and events[0].event_type in TOOL_EVENTS:
        # A legacy "tool_call" event makes no span; it is shown like any other event.
        spans = tool_spans([event.to_dict() for event in events])
        span = spans[0] if spans else None
        if span:
            span["calls"] = [display.tool_call(call) for call in span["arguments"] or []]
    return {
        "trace": trace,
        "node_id": node_id,
        "found": bool(events),
        "span": span,
        "views": [_describe(event) for event in events],
        "raw": [event.to_dict() for event in events],
    }


def _event_dicts(trace: Trace) -> tuple[list[Event], list[dict[str, Any]]]:
    events = list(trace.events.order_by("step_id", "pk"))
    for event in events:
        event.trace = trace  # to_dict reads trace.trace_id; spare a query per event
    return events, [event.to_dict() for event in events]


def graph_data(trace: Trace) -> dict[str, Any]:
    events, dicts = _event_dicts(trace)
    graph = build_graph(dicts)
    return {**graph, "tree": build_tree(dicts, graph["nodes"], graph["turns"]),
            "lastSeq": max((event.pk for event in events), default=0), "kindNames": STEP_KIND_NAMES,
            "flags": trace.flags(), "pending": running_calls(trace.trace_id)}


def conversation_context(trace: Trace) -> dict[str, Any]:
    """The whole run as one conversation, with the graph's node ids so a click selects the same step."""
    events, dicts = _event_dicts(trace)
    graph = build_graph(dicts)
    node_of = {event_id: node["id"] for node in graph["nodes"] for event_id in node["eventIds"]}
    for event, item in zip(events, dicts, strict=True):
        item["node"] = node_of.get(event.pk, str(event.step_id))
        item["tokens"] = _line_tokens(event)
    return {"folds": conversation(dicts), "steps": len(dicts),
            "live": {"lastSeq": max((event.pk for event in events), default=0), "selected": None,
                     "pending": running_calls(trace.trace_id)}}


def head_context(trace: Trace) -> dict[str, Any]:
    models = by_model(trace.events.all())
    previous_run = (Trace.objects.filter(agent_id=trace.agent_id, started_at__lt=trace.started_at)
                    .order_by("-started_at").values_list("trace_id", flat=True).first())
    return {"trace": trace, "summary": trace.summary_dict(), "models": models, "split": trace.tokens,
            "breakdowns": _summed_breakdowns(trace), "flags": trace.flags(), "previous_run": previous_run}


def _summed_breakdowns(trace: Trace) -> list[dict[str, Any]]:
    """Per model, the trace's priced calls' breakdowns summed: what its cost adds up from."""
    per_model: dict[str, list[pricing.Breakdown]] = {}
    reasoning: dict[str, int] = {}
    for event in trace.events.filter(event_type__in=PRICED_EVENTS, cost_usd__isnull=False).order_by("pk"):
        found = _breakdown(event)
        if found is not None:
            name = pricing.model_name(event.provider, event.model)
            per_model.setdefault(name, []).append(found)
            reasoning[name] = reasoning.get(name, 0) + event.reasoning_tokens
    return [{"model": name, "breakdown": pricing.summed(found), "reasoning": reasoning[name]}
            for name, found in per_model.items()]


@page
@snapshot()  # the header's totals, the graph and the panel from one state of the trace
def trace_page(request: HttpRequest, trace_id: str) -> HttpResponse:
    trace = Trace.objects.select_related("agent", "agent_version").filter(trace_id=trace_id).first()
    if trace is None:
        # The page an agent's first event has not reached yet: it waits and loads the trace when it does.
        response = render(request, "traces/waiting.html", {"trace_id": trace_id})
        response.status_code = 404
        return response
    selected = request.GET.get("step") or None
    if request.GET.get("partial") == "panel":
        context = panel_context(trace, selected)
        if not context["found"]:
            raise Http404("No such step")
        return render(request, "traces/_step_panel.html", {"panel": context})
    if request.GET.get("partial") == "head":
        # What a live page re-fetches to update its header totals after new events.
        return render(request, "traces/_head.html", head_context(trace))
    if request.GET.get("partial") == "conversation":
        return render(request, "traces/_conversation.html", conversation_context(trace))
    if request.GET.get("view") == "conversation":
        return render(request, "traces/conversation.html", {**head_context(trace), **conversation_context(trace),
                                                             "view": "conversation", "selected": selected,
                                                             "kind_filters": KIND_FILTERS})
    graph = graph_data(trace)
    if request.GET.get("partial") == "graph":
        # What a live page re-fetches to redraw its graph and tree after new events.
        return JsonResponse({**graph, "summary": trace.summary_dict()})
    if selected is None and graph["nodes"]:
        selected = graph["nodes"][0]["id"]
    elif selected is not None:
        selected = node_id_for(graph, selected)  # ?step=5 of span 4..5 selects node 4
    return render(request, "traces/detail.html", {
        **head_context(trace),
        "graph": {**graph, "selected": selected},
        "selected": selected,
        "panel": panel_context(trace, selected),
        "view": "graph",
    })

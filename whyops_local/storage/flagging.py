"""Flags kept up to date on the trace as the writer stores its events (domain.flags does the finding).

The trace row, cached by the writer between commits, carries the flag state; it is saved with the
totals, in the same statement and commit as the events.
"""

import logging
from datetime import UTC, datetime

from django.conf import settings

from ..domain import flags
from ..models import TOKEN_COLUMNS, Event, Trace

log = logging.getLogger(__name__)

# The columns observe() changes, saved with the trace totals.
FLAG_COLUMNS = ("flag_state", "flag_kinds", "open_call_at")


def observe(trace: Trace, event: Event) -> None:
    """Fold a just-stored event (already added to the totals) into its trace's flags."""
    if not settings.WHYOPS_FLAGS:
        return
    state = trace.flag_state
    try:
        uncounted = flags.observe(state, event)  # an Event has a flags.Step's attributes
    except Exception:  # flags are derived: a bug in finding them must not refuse the event itself
        log.exception("could not update the flags of trace %s at step %s", trace.trace_id, event.step_id)
        return
    if uncounted is not None:
        _uncount(trace, event if uncounted == event.step_id else None, uncounted)


def settle(trace: Trace) -> None:
    """After a commit's events: the columns the list filters on, from the state (once per trace)."""
    if not settings.WHYOPS_FLAGS:
        return
    state = trace.flag_state
    kinds = flags.kinds_of(state.get("flags", {}).values())
    trace.flag_kinds = f",{','.join(kinds)}," if kinds else ""
    oldest = flags.oldest_open(state)
    trace.open_call_at = datetime.fromtimestamp(oldest, UTC) if oldest is not None else None


def _uncount(trace: Trace, event: Event | None, step_id: int) -> None:
    """Take a manual copy of a proxied LLM response out of the trace's totals: the turn is counted once."""
    if event is None:
        event = trace.events.filter(step_id=step_id, event_type="llm_response", source=Event.SOURCE_SDK).first()
        if event is None:
            return
    Event.objects.filter(pk=event.pk).update(counted=False)
    event.counted = False
    trace.llm_calls -= 1
    for name in TOKEN_COLUMNS:
        setattr(trace, name, getattr(trace, name) - getattr(event, name))
    if event.cost_usd is None:
        trace.unpriced_count = max(trace.unpriced_count - 1, 0)
    elif trace.cost_usd is not None:
        trace.cost_usd -= event.cost_usd

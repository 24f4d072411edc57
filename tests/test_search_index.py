"""The list's search goes through an index on SQLite and on PostgreSQL alike, for text and trace ids."""

import pytest
from django.db import connection

from whyops_local.domain.schemas import EventIn
from whyops_local.models import Trace

from .storing import record_events

pytestmark = pytest.mark.django_db


def _store(trace_id: str, text: str) -> None:
    record_events([EventIn.model_validate(
        {"eventType": "llm_response", "traceId": trace_id, "agentName": "indexed", "content": {"content": text},
         "metadata": {"model": "gpt-4o-mini", "provider": "openai"}})])


def _plan(query: str) -> str:
    sql, params = Trace.objects.filtered(q=query)[:50].query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # a few rows: the planner would rather read them all
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def test_a_rare_word_and_a_part_of_a_trace_id_are_found_through_indexes():
    for n in range(30):
        _store(f"indexed-run-{n:03}", f"answer number {n}")
    _store("indexed-run-rare", "the parcel went to the wrong warehouse")
    assert [t.trace_id for t in Trace.objects.filtered(q="WRONG warehouse")] == ["indexed-run-rare"]
    assert [t.trace_id for t in Trace.objects.filtered(q="run-01")] == [f"indexed-run-{n:03}" for n in range(19, 9, -1)]
    plan = _plan("wrong warehouse")
    if connection.vendor == "postgresql":
        assert "whyops_search_body" in plan and "whyops_trace_id_search" in plan, plan
        assert "Seq Scan on whyops_local_trace" not in plan, plan
    else:
        assert "SCAN whyops_search VIRTUAL TABLE" in plan and "SCAN whyops_trace_search VIRTUAL TABLE" in plan, plan
        assert "SCAN whyops_local_trace" not in plan, plan  # the traces are looked up by id, not walked


def test_a_deleted_trace_leaves_the_indexes():
    from whyops_local.storage import search
    from whyops_local.storage.retention import delete_trace_named

    _store("indexed-gone", "words that go away")
    pk = Trace.objects.get(trace_id="indexed-gone").pk
    delete_trace_named("indexed-gone")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {search.TABLE} WHERE trace = %s", [pk])
        assert cursor.fetchone()[0] == 0
        if connection.vendor == "sqlite":  # rank 1: each index checked against the rows it reads its text from
            for table in (search.TABLE, search.MESSAGES, search.TRACE_IDS):
                cursor.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
    _store("indexed-gone", "other words")  # the same id again, indexed afresh
    assert [t.trace_id for t in Trace.objects.filtered(q="xed-gon")] == ["indexed-gone"]


def test_events_whose_metadata_is_stored_as_a_patch_are_found_and_leave_the_indexes_whole():
    from whyops_local.models import Event
    from whyops_local.storage import search
    from whyops_local.storage.retention import delete_trace_named

    usage = {"model": "gpt-4o-mini", "provider": "openai", "usage": {"promptTokens": 120, "completionTokens": 12}}
    for n, content in enumerate(["first answer", "xq answer as plain text", {"content": "answer in a dict"}]):
        record_events([EventIn.model_validate(
            {"eventType": "llm_response", "traceId": "patched", "agentName": "indexed", "stepId": n + 1,
             "content": content, "metadata": {**usage, "latencyMs": 10.5 + n}})])
    patched = Event.objects.filter(trace__trace_id="patched", packing__has_key="like")
    assert patched.count() == 2  # the trace's first llm_response is their base
    assert [e.metadata for e in Event.objects.filter(trace__trace_id="patched").order_by("step_id")] == [
        {**usage, "latencyMs": 10.5 + n} for n in range(3)]
    for query in ("plain text", "xq", "in a dict"):  # through the index, and (too short for it) by reading
        assert [t.trace_id for t in Trace.objects.filtered(q=query)] == ["patched"], query
    delete_trace_named("patched")
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:  # the index was told the very text it indexed
            cursor.execute(f"INSERT INTO {search.TABLE} ({search.TABLE}, rank) VALUES ('integrity-check', 1)")

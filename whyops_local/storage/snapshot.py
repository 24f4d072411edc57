"""Reads that see one committed state of the database.

Each statement outside a transaction sees the newest commit, so a trace's row read before its events
could lag them: 16 of the answers to a trace polled while 400 events arrived had totals behind the
events listed beside them (tests/test_concurrency.py). Inside ``snapshot()`` every read sees the state
of the first one.
"""

from contextlib import contextmanager, suppress

from django.db import DatabaseError, connection, transaction


@contextmanager
def snapshot():
    """A read-only transaction around the block (also usable as a decorator); inside a transaction
    already, that transaction's view."""
    if connection.in_atomic_block:
        yield
    elif connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield
    else:
        # Not transaction.atomic(): it begins IMMEDIATE (settings.py), which would queue this read
        # behind the writer. A deferred transaction's snapshot starts at its first read (WAL).
        with connection.cursor() as cursor:
            cursor.execute("BEGIN DEFERRED")
        try:
            yield
        except BaseException:
            # The block's own error is the one to report (a vanished file fails the rollback too).
            with suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("ROLLBACK")
            raise
        with connection.cursor() as cursor:
            cursor.execute("COMMIT")

"""The writer process: every write of a server goes through it, in the order the server sent them.

Imports nothing of the app at module level: the process is spawned, and Django is set up here
with the server's own database settings before anything touches a model.
"""

import logging
import pickle
import queue
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

# Ingest requests that queued up are stored in one commit, up to about this many bytes of bodies.
MAX_GROUP_BYTES = 512 * 1024
_CLOSED = object()
log = logging.getLogger("whyops_local.writer")


def serve(conn: Connection, databases: dict[str, Any], listening) -> None:
    # Ctrl-C reaches the whole process group; the writer stops when the server says so or goes away,
    # after the commit it is in.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import django
    from django.conf import settings

    settings.DATABASES = databases  # the server's, not whatever the settings module works out afresh here
    django.setup()

    from django.db import connection

    from . import live

    live.listening = listening  # the server's count of listening pages, in shared memory
    from .store import RowCache
    from .write_tasks import Ingest, ingest_group, perform

    inbox: queue.SimpleQueue = queue.SimpleQueue()
    # A thread of its own keeps reading, so the server never blocks sending while a commit runs.
    threading.Thread(target=_receive, args=(conn, inbox), name="whyops-writer-inbox", daemon=True).start()
    cache = RowCache()  # kept between commits, while no other process writes (see RowCache)
    held = None
    while True:
        item, held = held or inbox.get(), None
        if item is _CLOSED:  # the server is gone
            return
        # A failed connection (say, PostgreSQL restarted) is replaced before the next write.
        if connection.errors_occurred and not connection.is_usable():
            connection.close()
        task_id, task = item
        if not isinstance(task, Ingest):
            replies = [(task_id, perform(task, cache))]
            if task_id is None:  # unawaited: only live messages are worth a reply (and a wakeup)
                outcome = replies[0][1]
                if isinstance(outcome, Exception):
                    log.error("a write nobody waited for failed: %r", outcome)
                if not outcome or isinstance(outcome, Exception):
                    continue
        else:
            group, size = [item], len(task.body)
            while size < MAX_GROUP_BYTES:
                try:
                    more = inbox.get_nowait()
                except queue.Empty:
                    break
                if more is _CLOSED or not isinstance(more[1], Ingest):
                    held = more  # after this group
                    break
                group.append(more)
                size += len(more[1].body)
            replies = list(zip([i for i, _ in group], ingest_group([t for _, t in group], cache)))
        try:
            _reply(conn, replies)
        except OSError:  # the server is gone
            return


def _receive(conn: Connection, inbox: queue.SimpleQueue) -> None:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            message = None
        if message is None:  # the server is gone, or says it is going (writer._WriterProcess.close)
            inbox.put(_CLOSED)
            return
        for item in message:  # (task id, task) pairs; the id is None for a write nobody waits for
            inbox.put(item)


def _reply(conn: Connection, replies: list[tuple[int, Any]]) -> None:
    try:
        conn.send(replies)
    except (pickle.PicklingError, TypeError, AttributeError):
        # An exception that cannot cross the process boundary is still an answer.
        conn.send([(task_id, RuntimeError(repr(outcome)) if isinstance(outcome, BaseException) else outcome)
                   for task_id, outcome in replies])

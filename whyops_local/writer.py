"""All writes of a server go to one writer process, in order; the server's event loop only waits.

Why a process: storing events is Python work (validation, rows, JSON) that, on a thread of the
server, held the GIL the server needs to answer the next request; measured with 8 SDK clients, the
two threads together took 1.5 ms of CPU per single-event request, each half of it. Why one: SQLite
writers on separate connections wait for each other in its busy handler, which sleeps in steps of up
to 100 ms; one writer queues them in memory instead, and stores the ingest requests that queued up
in one commit (``writer_process``). Its order is the order the server sent things in, so the SDK's
tool span sent after a proxied answer lands after that answer.

Tests (``WHYOPS_DEDICATED_WRITER = False``) write on their own thread instead, inside the
transaction each test runs in.
"""

import asyncio
import atexit
import itertools
import logging
import multiprocessing
import threading
from collections import defaultdict
from typing import Any, Callable, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings

from . import live, writer_process
from .background import in_background
from .write_tasks import Ingest, Write, ingest_group, perform

log = logging.getLogger(__name__)
T = TypeVar("T")
Done = Callable[[Any], None]  # called on the submitting event loop with the outcome (or exception)


class WriterStopped(RuntimeError):
    pass


class _WriterProcess:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the fields below
        self._send_lock = threading.Lock()  # keeps each message whole and in order
        self._conn = None
        self._process = None
        self._waiting: dict[int, tuple[asyncio.AbstractEventLoop, Done]] = {}
        self._ids = itertools.count()
        self._unawaited: list[Write] = []  # queued by write_soon, not yet sent
        self._announcing_loop: asyncio.AbstractEventLoop | None = None  # where their live messages go
        self._ever_started = False

    def start(self) -> None:
        with self._lock:
            self._start()

    def close(self) -> None:
        """Stop the writer after the writes sent so far (at the server's exit)."""
        self.hand_over()
        with self._lock:
            conn, process, self._conn = self._conn, self._process, None
        if conn is None:
            return
        # Said rather than shown by closing the pipe: the reply thread, blocked reading it, would
        # keep the socket open, and the writer would wait for more.
        with self._send_lock:
            conn.send(None)
        process.join(timeout=10)
        conn.close()

    def _start(self) -> None:
        if self._conn is not None:
            return
        # Spawned, not forked: forking a server with running threads is unsafe.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(target=writer_process.serve, args=(theirs, settings.DATABASES, live.listening),
                                        name="whyops-writer", daemon=True)
        self._process.start()
        if not self._ever_started:
            self._ever_started = True
            # Registered after multiprocessing's exit handler (which terminates daemonic processes),
            # so it runs before it: the writer finishes its commit instead of dying in it.
            atexit.register(self.close)
        theirs.close()
        self._conn = ours
        threading.Thread(target=self._read_replies, args=(ours,), name="whyops-writer-replies", daemon=True).start()

    def submit(self, task: Ingest | Write, done: Done) -> None:
        loop = asyncio.get_running_loop()
        self.hand_over()  # writes queued earlier go first
        with self._lock:
            self._start()
            task_id, conn = next(self._ids), self._conn
            self._waiting[task_id] = (loop, done)
        self._send(conn, [(task_id, task)])

    def write_soon(self, task: Write) -> None:
        """Queue a write nobody waits for, sent after this pass of the event loop (see the module's ``write_soon``)."""
        if not self._unawaited:
            self._announcing_loop = asyncio.get_running_loop()
            self._announcing_loop.call_later(0, self.hand_over)
        self._unawaited.append(task)

    def hand_over(self) -> None:
        """Send the queued writes nobody waits for; the writer answers only with live messages to publish."""
        if not self._unawaited:
            return
        tasks, self._unawaited = self._unawaited, []
        with self._lock:
            self._start()
            conn = self._conn
        self._send(conn, [(None, task) for task in tasks])

    def _send(self, conn, message: list[tuple[int | None, Ingest | Write]]) -> None:
        try:
            with self._send_lock:
                conn.send(message)
        except OSError:
            self._stopped(conn)  # the reply reader may not have noticed yet

    def _read_replies(self, conn) -> None:
        while True:
            try:
                replies = conn.recv()
            except (EOFError, OSError):
                self._stopped(conn)
                return
            by_loop: dict[asyncio.AbstractEventLoop, list] = defaultdict(list)
            with self._lock:
                for task_id, outcome in replies:
                    if task_id is None:  # live messages of an unawaited write
                        by_loop[self._announcing_loop].append((live.publish_soon, outcome))
                    elif waiting := self._waiting.pop(task_id, None):  # None: already failed by _stopped
                        loop, done = waiting
                        by_loop[loop].append((done, outcome))
            for loop, settled in by_loop.items():
                loop.call_soon_threadsafe(_settle_all, settled)

    def _stopped(self, conn) -> None:
        """The writer process died or its pipe broke: fail what it had not answered; the next write starts another."""
        with self._lock:
            if self._conn is not conn:
                return
            log.error("the writer process stopped; starting another for the next write")
            self._conn, waiting, self._waiting = None, self._waiting, {}
        conn.close()
        error = WriterStopped("the writer process stopped before answering; the write may not have been stored")
        for loop, done in waiting.values():
            loop.call_soon_threadsafe(_settle_all, [(done, error)])


def _settle_all(settled: list[tuple[Done, Any]]) -> None:
    for done, outcome in settled:
        try:
            done(outcome)
        except Exception:  # one caller's failure must not keep the others waiting
            log.exception("a writer callback failed")


_writer = _WriterProcess()


def start() -> None:
    """Start the writer process now rather than on the first write (it takes a second to set up)."""
    if settings.WHYOPS_DEDICATED_WRITER:
        _writer.start()


def _run_in_thread(task: Ingest | Write) -> Any:
    return ingest_group([task])[0] if isinstance(task, Ingest) else perform(task)


def submit(task: Ingest | Write, done: Done) -> None:
    """Hand ``task`` to the writer; ``done`` is called on this event loop with its outcome."""
    if settings.WHYOPS_DEDICATED_WRITER:
        _writer.submit(task, done)
        return

    async def in_thread() -> None:
        done(await sync_to_async(_run_in_thread, thread_sensitive=True)(task))

    in_background(in_thread())


def write_soon(task: Write) -> None:
    """Queue a write nobody waits for (a proxied call's record), in order with all other writes; its
    live messages are published once it is stored, and a failure is for ``task`` itself to log.

    It goes to the writer process only once the response being sent has gone out: the pipe write
    wakes the writer, which took 0.1-0.2 ms of the server's time per call on this 2-core machine
    (measured), and the client need not wait for that. Timers run after the I/O callbacks of the
    event loop's next pass, the transport's write among them, hence ``call_later(0)``. A write
    submitted before then sends the queued ones first.
    """
    if settings.WHYOPS_DEDICATED_WRITER:
        _writer.write_soon(task)
    else:  # a test's thread: nothing to gain, and no event loop outlives its test
        submit(task, live.publish_soon)


async def _outcome(task: Ingest | Write) -> Any:
    future = asyncio.get_running_loop().create_future()
    submit(task, lambda outcome: future.done() or future.set_result(outcome))
    outcome = await future
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


async def write(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` (a module-level function doing database writes) in the writer, and return its result."""
    return await _outcome(Write(fn, args))


async def ingest(body: bytes, user: str | None) -> tuple[int, bytes]:
    """Validate and store an ingest request's body; returns once its events are committed (or refused)."""
    status, payload, messages = await _outcome(Ingest(body, user))
    live.publish_soon(messages)
    return status, payload


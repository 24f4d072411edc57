"""All writes of a server go to one writer process, in order; the server's event loop only waits.

Why a process: storing events is Python work (validation, rows, JSON) that, on a thread of the
server, held the GIL the server needs to answer the next request; measured with 8 SDK clients, the
two threads together took 1.5 ms of CPU per single-event request, each half of it. Why one: SQLite
writers on separate connections wait for each other in its busy handler, which sleeps in steps of up
to 100 ms; one writer queues them in memory instead, and stores the ingest requests that queued up
in one commit. Its order is the order the server sent things in, so the SDK's
tool span sent after a proxied answer lands after that answer.

Tests (``WHYOPS_DEDICATED_WRITER = False``) write on their own thread instead, inside the
transaction each test runs in.

The module has three parts, in the order a write meets them: the work (``Ingest``, ``Write`` and
what the writer does with them), the server's half (``submit``, ``write_soon``, ``ingest``,
``write``), and the writer process's half (``serve``), which imports the app only once spawned.
"""

import asyncio
import atexit
import gc
import itertools
import logging
import multiprocessing
import pickle
import queue
import signal
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from ..background import in_background
from ..domain import jsontext
from ..domain.schemas import Invalid, parse_events
from ..live import messages as live
from .faults import Unstored, fault_of, writer_has_open

if TYPE_CHECKING:  # imported where used: this module is also the spawned writer's entry, set up before models
    from .rows import EventsJob, RowCache, Saved

log = logging.getLogger(__name__)
T = TypeVar("T")
Done = Callable[[Any], None]  # called on the submitting event loop with the outcome (or exception)
# Ingest requests that queued up are stored in one commit, up to about this many bytes of bodies.
MAX_GROUP_BYTES = 512 * 1024
# The writer says which unawaited writes it has done with any reply it sends, and at least this often:
# the server holds each one until then, to hand it to the next writer should this one die.
ACK_EVERY = 64
# Writes nobody waits for that the database refused (full, read-only, its file gone) are kept and tried
# again before the next write, and at least this often (seconds) while none comes; as often, a writer
# with nothing to do looks at its SQLite file, to let go of one deleted or replaced (storage/faults.py).
RETRY_EVERY = 1.0
_CLOSED = object()


# The work -------------------------------------------------------------------------------------------
# Ingest requests arrive as their raw bodies and are validated in the writer, next to the database,
# so that the server's event loop only moves bytes.


@dataclass
class Ingest:
    """One ``POST /api/events/ingest``: its body, and the ``X-External-User-Id`` header."""

    body: bytes
    user: str | None = None


@dataclass
class Write:
    """Any other write: a module-level function and its (picklable) arguments. With ``with_cache``
    it is also given the writer's row cache (``cache=``), which it keeps up to date; otherwise the
    cache is dropped after it, since the write may have changed cached rows."""

    fn: Callable[..., Any]
    args: tuple = ()
    with_cache: bool = False
    # Set when a writer died before saying it had done this write: ``fn`` is then called with
    # ``resent=True`` and must not store twice what the dead writer may have committed.
    resent: bool = False


@dataclass
class OtlpExport:
    """One ``POST /v1/traces``: its body, its encoding (``otlp/decode.py``) and Content-Encoding."""

    body: bytes
    encoding: str
    content_encoding: str = ""
    prepared: Any = None  # the body decoded, mapped and validated by the server (otlp/store.py ``prepare``)


Grouped = (Ingest, OtlpExport)  # requests stored with the others of their kind that queued up


def _group(tasks: list, cache: "RowCache | None" = None) -> list:
    if isinstance(tasks[0], Ingest):
        return ingest_group(tasks, cache)
    from ..otlp.store import export_group

    return export_group(tasks, cache)


# An ingest request is answered (status, JSON body, live messages to publish), or fails with an exception.
Answer = tuple[int, bytes, list[live.Message]]


def _json(payload: Any) -> bytes:
    return jsontext.dumps(payload).encode()


def ingest_group(tasks: list[Ingest], cache: "RowCache | None" = None) -> list[Answer | Exception]:
    """Validate and store several ingest requests in one commit; one answer per request, in order."""
    from .rows import EventsJob

    answers: list[Answer | Exception | None] = [None] * len(tasks)
    jobs, stored_at = [], []
    for position, task in enumerate(tasks):
        try:
            events, is_array = parse_events(task.body)
        except Invalid as exc:
            answers[position] = (exc.status, _json(exc.to_dict()), [])
            continue
        except Exception as exc:  # noqa: BLE001  (that request's answer, never the writer's end)
            log.exception("could not read an ingest body")
            answers[position] = exc
            continue
        jobs.append(EventsJob(events, user=task.user))
        stored_at.append((position, is_array))
    for (position, is_array), outcome in zip(stored_at, _store_and_announce(jobs, cache), strict=True):
        if isinstance(outcome, Exception):
            answers[position] = outcome
            continue
        saved, messages = outcome
        results = [result.to_dict() for result in saved]
        answers[position] = (201, _json(results if is_array else results[0]), messages)
    return answers


def _store_and_announce(jobs: "list[EventsJob]", cache: "RowCache | None") -> "list[tuple[list[Saved], list] | Exception]":
    """Store the jobs (one commit), then build each one's live messages: (saved, messages) or the error."""
    from .rows import record_jobs

    if not jobs:
        return []
    try:
        outcomes = record_jobs(jobs, cache)
    except Exception as exc:  # noqa: BLE001  (the commit failed: every request in the group fails)
        return [exc] * len(jobs)
    return [outcome if isinstance(outcome, Exception) else (outcome, live.announcements(outcome))
            for outcome in outcomes]


def perform(task: Write, cache: "RowCache | None" = None) -> Any:
    """The write's result, or the exception it raised (handed to whoever asked for it)."""
    kwargs = {"cache": cache} if task.with_cache else {}
    if task.resent:
        kwargs["resent"] = True
    try:
        return task.fn(*task.args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        return exc
    finally:
        if cache is not None and not task.with_cache:
            cache.clear()


# The server's half -----------------------------------------------------------------------------------


class WriterStopped(Unstored):
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
        # Sent to the writer, not yet said to be done: re-sent to the next writer if this one dies.
        # Unawaited writes travel with negative ids, -1, -2, ...; awaited ones with 0, 1, ...
        self._unacked: deque[tuple[int, Write]] = deque()
        self._unawaited_ids = itertools.count(1)
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
        try:
            with self._send_lock:
                conn.send(None)
        except OSError:  # it died first (kill -9): there is nothing left to stop
            pass
        process.join(timeout=10)
        conn.close()

    def _start(self) -> None:
        if self._conn is not None:
            return
        # Spawned, not forked: forking a server with running threads is unsafe.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        shared = (live.listening, _backlog, writer_has_open)
        self._process = context.Process(target=serve, args=(theirs, settings.DATABASES, *shared), name="whyops-writer",
                                        daemon=True)
        self._process.start()
        if not self._ever_started:
            self._ever_started = True
            # Registered after multiprocessing's exit handler (which terminates daemonic processes),
            # so it runs before it: the writer finishes its commit instead of dying in it.
            atexit.register(self.close)
        theirs.close()
        self._conn = ours
        threading.Thread(target=self._read_replies, args=(ours,), name="whyops-writer-replies", daemon=True).start()

    def submit(self, task: Ingest | OtlpExport | Write, done: Done) -> None:
        loop = asyncio.get_running_loop()
        self.hand_over()  # writes queued earlier go first
        with self._lock:
            self._start()
            task_id, conn = next(self._ids), self._conn
            self._waiting[task_id] = (loop, done)
        self._send(conn, [(task_id, task)])

    def answering(self) -> bool:
        """Whether requests were sent that the writer has not answered yet (a glance, without the lock)."""
        return bool(self._waiting)

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
            numbered = [(-next(self._unawaited_ids), task) for task in tasks]
            self._unacked.extend(numbered)
        self._send(conn, numbered)

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
                    if task_id is None:  # the writer has done the unawaited writes up to -outcome
                        while self._unacked and -self._unacked[0][0] <= outcome:
                            self._unacked.popleft()
                    elif task_id < 0:  # live messages of an unawaited write
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
            unacked, self._unacked = [task for _, task in self._unacked], deque()
        conn.close()
        error = WriterStopped("the writer process stopped before answering; the write may not have been stored")
        for loop, done in waiting.values():
            loop.call_soon_threadsafe(_settle_all, [(done, error)])
        if unacked:  # already answered to their clients: they go to the next writer, first
            log.warning("handing %d writes the stopped writer had not done to a new one", len(unacked))
            resent = [Write(t.fn, t.args, t.with_cache, resent=True) for t in unacked]
            self._announcing_loop.call_soon_threadsafe(self._resend, resent)

    def _resend(self, tasks: list[Write]) -> None:
        self._unawaited[:0] = tasks
        self.hand_over()


# How many refused writes the writer holds now, and has dropped since the server started (see _Refused),
# in memory shared with it.
_backlog = multiprocessing.get_context("spawn").RawArray("q", 2)


def backlog() -> dict[str, int]:
    """The refused writes held to try again (``unstoredWaiting``) and dropped past WHYOPS_UNSTORED_MAX_MB."""
    return {"unstoredWaiting": _backlog[0], "unstoredDropped": _backlog[1]}


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


def _run_in_thread(task: Ingest | OtlpExport | Write) -> Any:
    return _group([task])[0] if isinstance(task, Grouped) else perform(task)


def submit(task: Ingest | OtlpExport | Write, done: Done) -> None:
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


def busy() -> bool:
    """Whether the writer process has requests in hand that it has not answered yet."""
    return settings.WHYOPS_DEDICATED_WRITER and _writer.answering()


async def _outcome(task: Ingest | OtlpExport | Write) -> Any:
    future = asyncio.get_running_loop().create_future()
    submit(task, lambda outcome: future.done() or future.set_result(outcome))
    outcome = await future
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


async def write(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` (a module-level function doing database writes) in the writer, and return its result."""
    return await _outcome(Write(fn, args))


async def export_otlp(body: bytes, encoding: str, content_encoding: str, prepared: Any = None) -> tuple[int, bytes, str]:
    """Store an OTLP trace export, decoded by the writer unless the server did (``prepared``); returns
    (status, body, content type) once committed (or refused)."""
    task = OtlpExport(body, encoding, content_encoding) if prepared is None else OtlpExport(b"", encoding, prepared=prepared)
    status, payload, content_type, messages = await _outcome(task)
    live.publish_soon(messages)
    return status, payload, content_type


async def ingest(body: bytes, user: str | None) -> tuple[int, bytes]:
    """Validate and store an ingest request's body; returns once its events are committed (or refused)."""
    status, payload, messages = await _outcome(Ingest(body, user))
    live.publish_soon(messages)
    return status, payload


# The writer process's half ---------------------------------------------------------------------------
# Spawned: Django is set up here with the server's own database settings before anything touches a model.


def collect_garbage_as_a_writer() -> None:
    """The writer's garbage collection, once Django is set up (benchmarks measuring its path in process call it too).

    A group of requests allocates some 100,000 objects at a time. Collected every 700 allocations,
    they were walked again and again and pushed to the old generation, whose collections walked all
    of Django too: 54 of ~250 us a span of bench/otlp.py's 100-span requests, 2 us with start-up's
    heap frozen (never garbage) and collections every 50,000 allocations (measured, export_group fed
    those requests in-process). Ingest's batches gain alike.
    """
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)


def serve(conn: Connection, databases: dict[str, Any], listening, figures, has_open) -> None:
    # Ctrl-C, and a SIGTERM sent to the process group, reach the writer too, maybe first: it stops when
    # the server says so or goes away, after the commit it is in.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import django

    settings.DATABASES = databases  # the server's, not whatever the settings module works out afresh here
    django.setup()

    from .faults import database_file
    from .rows import RowCache

    collect_garbage_as_a_writer()
    live.listening = listening  # the server's count of listening pages, in shared memory
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    # A thread of its own keeps reading, so the server never blocks sending while a commit runs.
    threading.Thread(target=_receive, args=(conn, inbox), name="whyops-writer-inbox", daemon=True).start()
    cache = RowCache()  # kept between commits, while no other process writes (see RowCache)
    database = database_file(has_open)
    refused = _Refused(settings.WHYOPS_UNSTORED_MAX_MB * 1024 * 1024, figures)
    held = None
    done = acked = 0  # the unawaited writes done, and said to be done
    while True:
        try:
            waking = refused or (database and database.opened)
            item, held = held or inbox.get(timeout=RETRY_EVERY if waking else None), None
        except queue.Empty:
            item = None
        if item is _CLOSED:  # the server is gone
            return
        # A failed connection (say, PostgreSQL restarted) is replaced before the next write.
        if connection.errors_occurred and not connection.is_usable():
            connection.close()
        fault = database.fault() if database else None
        if connection.connection is None:  # dropped after a fault: it may open another database file
            cache.clear()
        replies = _retried(refused, cache) if refused and fault is None else []
        if item is not None and isinstance(item[1], Grouped):
            group, held = _queued_group(item, inbox)
            outcomes = [fault] * len(group) if fault else _group([t for _, t in group], cache)
            replies += [(task_id, _answer(outcome)) for (task_id, _), outcome in zip(group, outcomes, strict=True)]
        elif item is not None:
            replies += _performed(item, cache, refused, fault)
            done = max(done, -item[0])
        # Said done up to the first write refused: a writer dying now leaves the rest to the next one.
        sayable = -refused.first()[0] - 1 if refused else done
        if sayable > acked and (replies or sayable - acked >= ACK_EVERY):
            replies.append((None, sayable))
            acked = sayable
        if not replies:
            continue
        try:
            _reply(conn, replies)
        except OSError:  # the server is gone
            return


def _answer(outcome: Any) -> Any:
    """The outcome as answered: a fault of the database as ``Unstored`` (the connection dropped, so that
    the next write opens the database afresh), anything else as it is."""
    if not isinstance(outcome, Exception) or (fault := fault_of(outcome)) is None:
        return outcome
    if not isinstance(outcome, Unstored):
        log.error("%s", fault)
    connection.close()
    return fault


def _queued_group(first: tuple[int, Ingest | OtlpExport], inbox: queue.SimpleQueue) -> tuple[list, Any]:
    """``first`` and the requests of its kind queued behind it (up to MAX_GROUP_BYTES), and what came next."""
    group, size = [first], len(first[1].body)
    while size < MAX_GROUP_BYTES:
        try:
            more = inbox.get_nowait()
        except queue.Empty:
            return group, None
        if more is _CLOSED or type(more[1]) is not type(first[1]):
            return group, more  # stored after this group
        group.append(more)
        size += len(more[1].body)
    return group, None


class _Refused:
    """Writes nobody waits for that the database refused, in order, to try again.

    They were answered to their clients already (proxied calls' records), and the server holds each
    one too until the writer says it is done: past WHYOPS_UNSTORED_MAX_MB of them the oldest are
    dropped, and counted where ``/api/health`` shows them, rather than both processes growing for as
    long as the database stays down. Dropping the oldest is what lets the writer say the writes up to
    the first one held are done, so the server lets go of its copies as well."""

    def __init__(self, budget: float, figures) -> None:
        self._writes: deque[tuple[int, Write, int]] = deque()  # with their pickled sizes
        self._bytes = 0
        self._budget = budget
        self._figures = figures  # writer._backlog, shared with the server
        self._figures[0] = 0
        self._dropped = 0  # since the database last took writes

    def __bool__(self) -> bool:
        return bool(self._writes)

    def first(self) -> tuple[int, Write]:
        task_id, task, _ = self._writes[0]
        return task_id, task

    def append(self, item: tuple[int, Write]) -> None:
        size = len(pickle.dumps(item[1], pickle.HIGHEST_PROTOCOL))
        self._writes.append((*item, size))
        self._bytes += size
        while self._bytes > self._budget:
            self._bytes -= self._writes.popleft()[2]
            if not self._dropped:
                log.error("the writes the database refused take more than WHYOPS_UNSTORED_MAX_MB (%g MB): dropping "
                          "the oldest from now on, counted in /api/health's unstoredDropped",
                          self._budget / 1024 / 1024)
            self._dropped += 1
            self._figures[1] += 1
        self._figures[0] = len(self._writes)

    def stored_first(self) -> None:
        self._bytes -= self._writes.popleft()[2]
        self._figures[0] = len(self._writes)
        if self._writes:
            return
        if self._dropped:
            log.error("the database takes writes again: the writes it refused are stored, but for %d dropped past "
                      "WHYOPS_UNSTORED_MAX_MB", self._dropped)
        else:
            log.warning("the database takes writes again: the writes it refused are stored")
        self._dropped = 0


def _performed(item: tuple[int, Write], cache: "RowCache", refused: _Refused, fault: Unstored | None) -> list:
    task_id, task = item
    if task_id < 0 and refused:  # behind the writes refused before it, in order
        refused.append(item)
        return []
    outcome = _answer(fault or perform(task, cache))
    if task_id < 0:  # unawaited: only live messages are worth a reply (and a wakeup)
        if isinstance(outcome, Unstored):
            refused.append(item)
        elif isinstance(outcome, Exception):
            log.error("a write nobody waited for failed: %r", outcome)
        if not outcome or isinstance(outcome, Exception):
            return []
    return [(task_id, outcome)]


def _retried(refused: _Refused, cache: "RowCache") -> list:
    """The refused writes tried again, in order, until the database refuses one again."""
    replies = []
    while refused:
        task_id, task = refused.first()
        outcome = _answer(perform(task, cache))
        if isinstance(outcome, Unstored):
            break
        refused.stored_first()
        if isinstance(outcome, Exception):
            log.error("a write nobody waited for failed: %r", outcome)
        elif outcome:
            replies.append((task_id, outcome))
    return replies


def _receive(conn: Connection, inbox: queue.SimpleQueue) -> None:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            message = None
        if message is None:  # the server is gone, or says it is going (writer._WriterProcess.close)
            inbox.put(_CLOSED)
            return
        for item in message:  # (task id, task) pairs; the id is negative for a write nobody waits for
            inbox.put(item)


def _reply(conn: Connection, replies: list[tuple[int, Any]]) -> None:
    try:
        conn.send(replies)
    except (pickle.PicklingError, TypeError, AttributeError):
        # An exception that cannot cross the process boundary is still an answer.
        conn.send([(task_id, RuntimeError(repr(outcome)) if isinstance(outcome, BaseException) else outcome)
                   for task_id, outcome in replies])

"""Faults of the database rather than of a request: a full disk, a read-only database, its file deleted or
replaced while the server runs.

Each reaches the request that met it as an ``Unstored`` error with its own status (507 for a full disk,
503 otherwise: the client may retry), never as an error page; and each makes the writer drop its
database connection, so that the next write opens the database afresh. A database made writable again,
or a file put back, is written to without a restart.

Reads meet the same faults of the file (``read_fault``): their routes answer 503 saying what happened
to it, and work again once it is back, again without a restart.
"""

import multiprocessing
import os
import sqlite3
from typing import Any
from urllib.request import pathname2url

from django.db import DatabaseError, connection
from django.db.backends.signals import connection_created


class Unstored(RuntimeError):
    """A write not done for a reason of the server's, answered with ``status``; the client may retry it."""

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple:  # crosses from the writer process with its status
        return type(self), (str(self), self.status)


# SQLite's primary result codes (``sqlite3.Error.sqlite_errorname``, the part before any "_" suffix) and
# PostgreSQL's SQLSTATEs that are the database's fault, with what the client is told.
_FULL = 507, "The disk holding the database is full: free some space (or prune old traces), then retry"
_READ_ONLY = 503, "The database cannot be written (read-only file, folder or file system): make it writable, then retry"
# A database without our tables: an empty file made at the path of a deleted one (SQLite makes one when
# anything opens the path), or another database put there.
_NOT_OURS = 503, "The database holds no whyops-local tables: put the database back, or restart the server to set this one up"
_SQLITE = {"SQLITE_FULL": _FULL, "SQLITE_READONLY": _READ_ONLY, "SQLITE_CANTOPEN": _READ_ONLY,
           "SQLITE_IOERR": (503, "The database could not be written (I/O error)"), "no such table": _NOT_OURS,
           "SQLITE_NOTADB": _NOT_OURS}
_DELETED = ("The database file {path} was deleted or moved while the server ran: put it back (restore it from a "
            "backup), or restart the server to begin a new one")
_NOT_A_DATABASE = ("The file at {path} is not a whyops-local database (it was replaced or emptied while the server "
                   "ran): put the database file back, or restart the server to set this one up")
_POSTGRES = {"53100": _FULL, "25006": _READ_ONLY, "42P01": _NOT_OURS}


def fault_of(exc: BaseException) -> Unstored | None:
    """The ``Unstored`` answer for a database error caused by the database's state, or None for anything else."""
    if isinstance(exc, Unstored):
        return exc
    cause = exc.__cause__ or exc  # Django re-raises the driver's error as its own, from the driver's
    kind = _sqlite_kind(cause)
    known = _SQLITE.get(kind) if kind else _POSTGRES.get(_sqlstate(cause))
    if known is None:
        return None
    status, message = known
    return Unstored(f"{message} ({cause})", status)


def _sqlite_kind(exc: BaseException) -> str | None:
    name = getattr(exc, "sqlite_errorname", None)
    if name == "SQLITE_ERROR" and str(exc).startswith("no such table"):
        return "no such table"
    return "_".join(name.split("_")[:2]) if name else None  # SQLITE_READONLY_DBMOVED: SQLITE_READONLY


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)  # psycopg 3, psycopg 2


# The file (st_dev, st_ino) the writer process has open, (0, 0) while none, in memory shared with the
# server's process: see _ExistingFile. The writer is handed the server's (``database_file``); this
# module's own array in the writer process stays (0, 0), so the writer never waits for itself.
writer_has_open = multiprocessing.get_context("spawn").RawArray("q", 2)


def _file_at(path: str) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


class DatabaseFile:
    """The SQLite file the writer's connection has open, checked before each write, and every
    RETRY_EVERY seconds while it is open (storage/writer.py), against the file now at its path: SQLite
    itself would go on writing to a deleted file (lost at the next start) or to the old one of a
    replaced file, and answer every write as stored."""

    def __init__(self, path: str | os.PathLike, shared) -> None:
        self.path = os.fspath(path)
        self.opened: tuple[int, int] | None = None
        self._shared = shared  # the server's writer_has_open
        connection_created.connect(self._connected, weak=False)

    def _connected(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        self.opened = self._now()
        self._shared[:] = self.opened or (0, 0)

    def _now(self) -> tuple[int, int] | None:
        return _file_at(self.path)

    def fault(self) -> Unstored | None:
        """Why nothing can be written now (the file is gone), or None; a replaced file is opened anew."""
        now = self._now()
        if now is None:
            self._let_go()  # and do not reopen: opening the path now would make an empty database there
            return Unstored(_DELETED.format(path=self.path))
        if now != self.opened:
            self._let_go()  # the next write opens the file now at the path
        return None

    def _let_go(self) -> None:
        """Close the connection to the old file, its WAL emptied into it first: the WAL file is found by
        its name, and a file put at the database's path would otherwise read the old one's pages from it."""
        if connection.connection is not None:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except DatabaseError:
                pass  # closing is all that is left to do
            connection.close()
        self.opened = None
        self._shared[:] = (0, 0)  # only now may the server's reads open the file at the path


def _sqlite_path() -> str | None:
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return None
    return os.fspath(connection.settings_dict["NAME"])


def database_file(shared) -> DatabaseFile | None:
    """What the writer checks before each write: the SQLite file; nothing for a database server.
    ``shared``: the server's writer_has_open."""
    path = _sqlite_path()
    return DatabaseFile(path, shared) if path else None


def read_fault(exc: BaseException | None) -> Unstored | None:
    """The 503 answer for a read that failed because of what happened to the SQLite file (deleted, emptied,
    replaced by another file), or None for anything else: an error of the route itself stays a 500."""
    if not isinstance(exc, DatabaseError) or (path := _sqlite_path()) is None:
        return None
    if not os.path.exists(path):
        return Unstored(_DELETED.format(path=path))
    cause = exc.__cause__ or exc
    if isinstance(cause, _WriterHoldsTheOldFile):
        return Unstored(f"The database file {path} was replaced while the server ran: the server lets go of the old "
                        f"one within seconds, retry then")
    kind = _sqlite_kind(cause)
    if kind in ("no such table", "SQLITE_NOTADB"):
        return Unstored(_NOT_A_DATABASE.format(path=path))
    if kind in ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_CORRUPT"):
        return Unstored(f"The database file {path} could not be read ({cause}): if it was replaced, retry in a "
                        f"moment; otherwise put the database file back, or restart the server")
    return None


class _WriterHoldsTheOldFile(sqlite3.OperationalError):
    pass


class _ExistingFile(sqlite3.Connection):
    """A connection to the SQLite file only if it is there (``mode=rw``): opening a missing path would
    make an empty database there, with no tables, which every page and read would then fail on, and
    which the next start would set up as a new, empty one instead of the file the user puts back.

    Nor while the writer still has another file open than the one at the path (it lets go of it within
    seconds): SQLite finds the WAL by its name, and a connection to the new file would read the old
    file's pages from the old one's WAL, and write them into the new file once it closes."""

    def __init__(self, database: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        path = os.fspath(database)
        if not path.startswith("file:"):
            held = tuple(writer_has_open)
            if held != (0, 0) and _file_at(path) not in (held, None):
                raise _WriterHoldsTheOldFile(f"the writer still has the file replaced at {path} open")
            database = f"file:{pathname2url(path)}?mode=rw"
        super().__init__(database, *args, **kwargs)  # Django opens every SQLite database with uri=True


def open_existing_only() -> None:
    """From now on (once migrate has made the file), this process and the writer process it starts
    (which gets these settings) open the SQLite file only if it is there: only start-up creates one."""
    if _sqlite_path() is not None:
        connection.settings_dict["OPTIONS"]["factory"] = _ExistingFile

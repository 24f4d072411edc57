"""Faults of the database rather than of a request: a full disk, a read-only database, its file deleted or
replaced while the server runs.

Each reaches the request that met it as an ``Unstored`` error with its own status (507 for a full disk,
503 otherwise: the client may retry), never as an error page; and each makes the writer drop its
database connection, so that the next write opens the database afresh. A database made writable again,
or a file put back, is written to without a restart.
"""

import os
from typing import Any

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
           "SQLITE_IOERR": (503, "The database could not be written (I/O error)"), "no such table": _NOT_OURS}
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


class DatabaseFile:
    """The SQLite file the writer's connection has open, checked before each write against the file now at
    its path: SQLite itself would go on writing to a deleted file (lost at the next start) or to the old
    one of a replaced file, and answer every write as stored."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self.opened: tuple[int, int] | None = None
        connection_created.connect(self._connected, weak=False)

    def _connected(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        self.opened = self._now()

    def _now(self) -> tuple[int, int] | None:
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return None
        return found.st_dev, found.st_ino

    def fault(self) -> Unstored | None:
        """Why nothing can be written now (the file is gone), or None; a replaced file is opened anew."""
        now = self._now()
        if now is None:
            self._let_go()  # and do not reopen: opening the path now would make an empty database there
            return Unstored(f"The database file {self.path} was deleted or moved while the server ran: "
                            f"put it back, or restart the server to begin a new one")
        if now != self.opened:
            self._let_go()  # the next write opens the file now at the path
        return None

    def _let_go(self) -> None:
        """Close the connection to the old file, its WAL emptied into it first: the WAL file is found by
        its name, and a file put at the database's path would otherwise read the old one's pages from it."""
        if connection.connection is None:
            return
        try:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except DatabaseError:
            pass  # closing is all that is left to do
        connection.close()


def database_file() -> DatabaseFile | None:
    """What to check before each write: the SQLite file; nothing for a database server."""
    settings = connection.settings_dict
    if connection.vendor != "sqlite" or str(settings["NAME"]) == ":memory:":
        return None
    return DatabaseFile(settings["NAME"])

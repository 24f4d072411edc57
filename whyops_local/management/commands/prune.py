"""`manage.py prune --older-than 7d | --keep-mb 500 | --trace ID`: delete traces and give the space back."""

import asyncio
import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from ...storage import retention

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def age(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``2w`` (a bare number is days)."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([mhdw]?)", text.strip())
    if not found:
        raise CommandError(f"--older-than: {text!r} is not an age like 7d, 12h, 30m or 2w")
    return timedelta(**{_UNITS[found[2] or "d"]: float(found[1])})


class Command(BaseCommand):
    help = "Delete traces idle for longer than an age, the oldest ones beyond a size, or one trace; then give the space back."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--older-than", help="delete traces whose newest event is older than this (7d, 12h, 30m)")
        parser.add_argument("--keep-mb", type=float, help="delete the oldest traces until the data takes at most this many MB")
        parser.add_argument("--trace", help="delete this trace")

    def handle(self, *args, older_than=None, keep_mb=None, trace=None, **options) -> None:
        if older_than is None and keep_mb is None and trace is None:
            raise CommandError("say what to prune: --older-than AGE, --keep-mb MB or --trace ID")
        before = retention.data_figures()
        pruned = asyncio.run(retention.prune(age(older_than) if older_than else None,
                                             int(keep_mb * 1024 * 1024) if keep_mb is not None else None, trace))
        after = retention.data_figures()
        self.stdout.write(f"deleted {pruned.traces} trace(s); database file "
                          f"{_mb(before['fileBytes'])} -> {_mb(after['fileBytes'])}")


def _mb(size: int | None) -> str:
    return "?" if size is None else f"{size / 1024 / 1024:.1f} MB"

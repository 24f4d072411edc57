"""`manage.py import run.json`: store a trace exported by `export` (a trace already here is left as is)."""

import asyncio
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ...domain import jsontext
from ...storage import exports
from ...storage.writer import write


class Command(BaseCommand):
    help = "Import a trace exported with `export` (or GET /api/traces/<id>/export); importing it twice stores it once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options) -> None:
        try:
            document = jsontext.loads(file.read_bytes())
            trace_id, stored = asyncio.run(write(exports.import_document, document))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"could not import {file}: {exc!r}") from exc
        self.stdout.write(f"imported trace {trace_id}" if stored else f"trace {trace_id} is already here; nothing imported")

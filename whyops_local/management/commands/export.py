"""`manage.py export TRACE_ID > run.json` (or `--html > run.html`): one trace as one file."""

from django.core.management.base import BaseCommand, CommandError

from ...pages.standalone import export_file


class Command(BaseCommand):
    help = "Write a trace to stdout as a JSON document (for `import`), or with --html as one self-contained HTML file."

    def add_arguments(self, parser) -> None:
        parser.add_argument("trace_id")
        parser.add_argument("--html", action="store_true", help="a self-contained HTML file instead of JSON")

    def handle(self, *args, trace_id: str, html: bool, **options) -> None:
        document = export_file(trace_id, html)
        if document is None:
            raise CommandError(f"no trace with traceId {trace_id!r}")
        self.stdout.write(document)

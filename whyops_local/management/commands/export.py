"""`manage.py export TRACE_ID > run.json` (or `--html > run.html`): one trace as one file."""

from django.core.management.base import BaseCommand, CommandError

from ...domain import jsontext
from ...models import Trace
from ...pages.standalone import standalone_html
from ...storage import exports


class Command(BaseCommand):
    help = "Write a trace to stdout as a JSON document (for `import`), or with --html as one self-contained HTML file."

    def add_arguments(self, parser) -> None:
        parser.add_argument("trace_id")
        parser.add_argument("--html", action="store_true", help="a self-contained HTML file instead of JSON")

    def handle(self, *args, trace_id: str, html: bool, **options) -> None:
        trace = Trace.objects.select_related("agent", "agent_version").filter(trace_id=trace_id).first()
        if trace is None:
            raise CommandError(f"no trace with traceId {trace_id!r}")
        self.stdout.write(standalone_html(trace) if html else jsontext.dumps(exports.export_trace(trace)))

"""What finding flags costs the writer, measured in process where the HTTP figures' noise cannot hide it.

    python bench/flags.py [--events 5000]

Stores bench/ingest.py's agent-run events through the writer's own path (``record_jobs`` with a
row cache kept between commits, SQLite in a throwaway data dir), with ``WHYOPS_FLAGS`` on and off
in alternating rounds on separate traces, and prints the writer's CPU time per event (this
process's, so other work on a shared machine counts less; the best of 8 rounds each, in alternating order) and the
difference. ``bench/ingest.py --flags`` gives the same comparison over HTTP.
Target: flags cost < 10%.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA_DIR = Path(tempfile.mkdtemp(prefix="whyops-bench-flags-"))
os.environ["WHYOPS_DATA_DIR"] = str(DATA_DIR)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whyops_local.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bench.ingest import event  # noqa: E402
from whyops_local.domain.schemas import EventIn  # noqa: E402
from whyops_local.storage.rows import EventsJob, RowCache, record_jobs  # noqa: E402
from whyops_local.storage.writer import collect_garbage_as_a_writer  # noqa: E402


def seconds_per_event(flags_on: bool, events: int, per_request: int, cache: RowCache) -> float:
    settings.WHYOPS_FLAGS = flags_on
    run = uuid.uuid4().hex[:8]
    items = [EventIn.model_validate(event(run, 0, i)) for i in range(events)]  # validated before the clock
    started = time.process_time()
    for offset in range(0, events, per_request):
        (outcome,) = record_jobs([EventsJob(items[offset:offset + per_request])], cache)
        assert not isinstance(outcome, Exception), outcome
    return (time.process_time() - started) / events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="events per round (one trace each)")
    events = parser.parse_args().events
    try:
        call_command("migrate", interactive=False, verbosity=0)
        collect_garbage_as_a_writer()  # as in the writer process: collections that walk all of Django cost more with more objects
        print(f"{'case':28} {'flags off us/event':>19} {'flags on us/event':>18} {'cost':>7}  (target < 10%)")
        for name, per_request in (("single-event commits", 1), ("100-event commits", 100)):
            cache = RowCache()
            count = events // 5 if per_request == 1 else events
            seconds_per_event(True, 500, per_request, cache)  # warm-up
            rounds = {True: [], False: []}
            for round_number in range(8):  # the order alternates: the database grows as rounds go
                for flags_on in (False, True) if round_number % 2 else (True, False):
                    rounds[flags_on].append(seconds_per_event(flags_on, count, per_request, cache))
            without, with_flags = min(rounds[False]), min(rounds[True])
            cost = with_flags / without - 1
            print(f"{name:28} {without * 1e6:19.1f} {with_flags * 1e6:18.1f} {cost:7.1%} {'ok' if cost < 0.1 else 'MISSED'}")
    finally:
        shutil.rmtree(DATA_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()

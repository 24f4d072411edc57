"""What the guard in front of every route costs: ingest through this checkout beside a checkout without it.

    python bench/guard.py [--baseline REV] [--events 4000]

Exports ``REV`` (default ``main``; give the commit before the guard) with ``git archive`` into a temporary
folder, starts both servers (manage.py runserver, daphne) side by side on their own data dirs, and runs
the ingest cases of bench/ingest.py on each, alternating, best of two rounds each; then the same on this
checkout with WHYOPS_API_KEY set (the key checked on every request). Target: the guard costs < 5%.
The servers' rates swing with the shared machine's load, so the guard's own time per request
(``guards.check`` in this process, with and without a key) is printed beside, as a share of one request.
"""

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import http_rate  # noqa: E402
from tests.servers import run_server  # noqa: E402

KEY = "bench-key"
CASES = [("single-event requests, 8 clients", 1, 8, 1), ("100-event arrays, 4 clients", 1 / 5, 4, 100)]


def export(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


async def keyed_rate(port: int, count: int, clients: int, per_request: int) -> float:
    from bench import ingest

    # KeepAliveClient sends no key: add the header to every request it makes.
    original = ingest.KeepAliveClient.request

    async def with_key(self, method, path, body=b"", content_type="application/json"):
        head_type = f"{content_type}\r\nX-API-Key: {KEY}"
        return await original(self, method, path, body, head_type)

    ingest.KeepAliveClient.request = with_key
    try:
        return await http_rate(port, count, clients, per_request)
    finally:
        ingest.KeepAliveClient.request = original


def check_seconds(key: str | None, rounds: int = 50_000) -> float:
    """Seconds ``guards.check`` takes for an SDK's ingest request (what the guard adds to each)."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whyops_local.settings")
    import django
    from django.conf import settings

    django.setup()
    from whyops_local.http import guards

    settings.WHYOPS_API_KEY = key
    headers = {"host": "127.0.0.1:8000", "content-type": "application/json", "content-length": "420",
               "user-agent": "python-httpx/0.28.1", "accept": "*/*", "accept-encoding": "gzip, deflate",
               "connection": "keep-alive", **({"authorization": f"Bearer {key}"} if key else {})}
    start = time.perf_counter()
    for _ in range(rounds):
        assert guards.check("POST", "/api/events/ingest", "", headers, "http") is None
    return (time.perf_counter() - start) / rounds


async def main(baseline: str, events: int) -> None:
    with (tempfile.TemporaryDirectory() as base_root, tempfile.TemporaryDirectory() as base_dir,
          tempfile.TemporaryDirectory() as ours_dir, tempfile.TemporaryDirectory() as keyed_dir,
          run_server(Path(base_dir), root=export(baseline, Path(base_root))) as base,
          run_server(Path(ours_dir)) as ours, run_server(Path(keyed_dir), env={"WHYOPS_API_KEY": KEY}) as keyed):
        for server, rate in ((base, http_rate), (ours, http_rate), (keyed, keyed_rate)):
            await rate(server.port, 400, 8, 1)  # warm-up
        rows = []
        for name, divisor, clients, per_request in CASES:
            count = int(events / divisor)
            rates = {"base": [], "ours": [], "keyed": []}
            for _ in range(2):
                for label, server, rate in (("base", base, http_rate), ("ours", ours, http_rate),
                                            ("keyed", keyed, keyed_rate)):
                    rates[label].append(await rate(server.port, count, clients, per_request))
            rows.append((name, *(max(rates[label]) for label in ("base", "ours", "keyed"))))
    print(f"baseline: {baseline}")
    print(f"{'case':36} {'baseline/s':>11} {'guarded/s':>10} {'ratio':>6} {'keyed/s':>8} {'ratio':>6}  (target >= 0.95)")
    for name, without, guarded, keyed_rate_ in rows:
        ratio = guarded / without
        print(f"{name:36} {without:11.0f} {guarded:10.0f} {ratio:6.3f} {keyed_rate_:8.0f} {keyed_rate_ / without:6.3f}"
              f"  {'ok' if ratio >= 0.95 else 'MISSED'}")
    request = 1 / rows[0][1]  # the baseline's time per single-event request, as 8 clients see it
    for label, key in (("guards.check, no key", None), ("guards.check, with the key", KEY)):
        took = check_seconds(key)
        print(f"{label:36} {took * 1e6:8.1f} us a request = {took / request:6.2%} of one single-event request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main", help="the revision to compare with (default: main)")
    parser.add_argument("--events", type=int, default=4000, help="events for the 8-client case (the other scales)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.baseline, arguments.events))

"""What showing running proxied calls live costs the proxy when no page watches (the common case).

    python bench/pending_calls.py [--number 200000]

In-process, side by side in one run: the per-chunk hook (``live.call_streamed``) beside what the relay
already does with every chunk (SSE parsing and reassembly), and the per-call pair (``call_started`` /
``call_ended``). End-to-end figures (bench/proxy.py) swing more between two runs on this shared machine
than these hooks could move them.
"""

import argparse
import os
import sys
import tempfile
import timeit
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("WHYOPS_DATA_DIR", tempfile.mkdtemp(prefix="whyops-bench-pending-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whyops_local.settings")

import django  # noqa: E402

django.setup()

from whyops_local.live import messages as live  # noqa: E402
from whyops_local.proxy.providers.openai import ChatStream  # noqa: E402
from whyops_local.proxy.sse import SSEParser  # noqa: E402

CHUNK = (b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
         b'"choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}\n\n')


def best(fn, number: int) -> float:
    """ns per call, the best of 5 runs."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    assert not live.announce_needed(), "a page listens: this measures the case where none does"
    now = datetime.now(UTC)
    call, stream = object(), ChatStream()
    live.call_started(call, "bench", "gpt-4o-mini", now)
    hook = best(lambda: live.call_streamed(call, stream.text), args.number)
    sse, reassembly = SSEParser(), ChatStream()

    def relay_work() -> None:
        for event in sse.feed(CHUNK):
            reassembly.feed(event)

    existing = best(relay_work, args.number // 10)

    def a_call() -> None:
        running = object()
        live.call_started(running, "bench", "gpt-4o-mini", now)
        live.call_ended(running)

    per_call = best(a_call, args.number // 10)
    print(f"per chunk: hook {hook:6.0f} ns   relay's own parse + reassembly {existing:6.0f} ns   "
          f"ratio {hook / existing:.3f}")
    print(f"per call:  call_started + call_ended {per_call:6.0f} ns")


if __name__ == "__main__":
    main()

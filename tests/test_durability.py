"""kill -9 under load loses nothing acknowledged: every request that got a 2xx is on disk afterwards.

Several clients ingest (single events and arrays) and call through the proxy while the writer process,
or the whole server, is killed with SIGKILL; the server (or a new one on the same data) is then read back.
The proxy answers a call before recording it, so a kill -9 of the whole server in the moment between the
two can lose that record by design: the server-kill test checks ingest only. A dying writer's queued
records are another matter (re-sent to the next writer), checked here beside ingest.
"""

import itertools
import os
import signal
import threading
import time

import httpx

from .proxy_fixtures import read_trace
from .servers import run_server, writer_pids

MESSAGES = [{"role": "user", "content": "hi"}]


class Load:
    """Clients sending until ``stop()``, each remembering what was acknowledged (a 2xx answer)."""

    def __init__(self, server, ingest_clients: int = 3, proxy_clients: int = 0, name: str = "durable") -> None:
        self.server, self.name = server, name
        self.events: dict[str, list[str]] = {}  # trace id -> idempotency keys of acknowledged events
        self.calls: list[str] = []  # trace ids of acknowledged proxied calls, one call each
        self.refused = 0  # answered with an error or not at all (the writer was dying): allowed to be lost
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._ingest, args=(n,)) for n in range(ingest_clients)]
        self._threads += [threading.Thread(target=self._proxy, args=(n,)) for n in range(proxy_clients)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join()

    def _ingest(self, client: int) -> None:
        trace = f"{self.name}-{client}"
        keys = self.events.setdefault(trace, [])
        with httpx.Client(base_url=self.server.api, timeout=30) as http:
            for n in itertools.count():
                if self._stopping.is_set():
                    return
                batch = [f"{client}-{n}-{i}" for i in range(1 if n % 2 else 3)]  # single events and arrays
                events = [{"eventType": "user_message", "traceId": trace, "agentName": "durable", "idempotencyKey": key,
                           "content": {"messages": [{"role": "user", "content": key}]}} for key in batch]
                try:
                    answer = http.post("/events/ingest", json=events[0] if len(events) == 1 else events)
                except httpx.TransportError:
                    answer = None
                if answer is not None and answer.is_success:
                    keys.extend(batch)
                else:
                    self.refused += 1

    def _proxy(self, client: int) -> None:
        with httpx.Client(base_url=self.server.proxy, timeout=30) as http:
            for n in itertools.count():
                if self._stopping.is_set():
                    return
                trace = f"{self.name}-call-{client}-{n}"
                try:
                    answer = http.post("/v1/chat/completions", headers={"X-Trace-ID": trace},
                                       json={"model": "gpt-4o-mini", "messages": MESSAGES})
                except httpx.TransportError:
                    answer = None
                if answer is not None and answer.is_success:
                    self.calls.append(trace)
                else:
                    self.refused += 1

    def acknowledged(self) -> int:
        return sum(map(len, self.events.values())) + len(self.calls)

    def wait_for(self, more: int, timeout: float = 60) -> None:
        """Until ``more`` requests more than now were acknowledged: a (new) writer is up and storing."""
        target, deadline = self.acknowledged() + more, time.monotonic() + timeout
        while self.acknowledged() < target:
            assert time.monotonic() < deadline, "the server stopped acknowledging"
            time.sleep(0.05)

    def assert_all_stored(self, server) -> None:
        for trace, keys in self.events.items():
            answer = httpx.get(f"{server.api}/traces/{trace}", timeout=30)
            assert answer.status_code == 200, (trace, answer.status_code, answer.text[:500])
            stored = [e["idempotencyKey"] for e in answer.json()["events"]]
            # A request the kill cut off may have been committed without its answer arriving: more is fine.
            assert set(keys) <= set(stored) and len(stored) == len(set(stored)), trace
        for trace in self.calls:
            assert [e["eventType"] for e in read_trace(server, trace, 2, timeout=30)["events"]] == [
                "user_message", "llm_response"], trace


def test_killing_the_writer_under_load_loses_no_acknowledged_event_or_call(fake_upstream, fake, tmp_path):
    fake.gate.set()
    with run_server(tmp_path, env={"WHYOPS_OPENAI_BASE_URL": fake_upstream.url + "/v1"}) as server:
        with Load(server, ingest_clients=3, proxy_clients=2) as load:
            for _ in range(3):  # killed three times, each time mid-load
                load.wait_for(60)
                [writer] = writer_pids(server)
                os.kill(writer, signal.SIGKILL)
            load.wait_for(60)  # and the last writer's successor stores
        assert load.refused, "no request met a dying writer: the kills came at quiet moments"
        load.assert_all_stored(server)


def test_killing_the_whole_server_under_load_loses_no_acknowledged_event(tmp_path):
    with run_server(tmp_path) as server:
        with Load(server, ingest_clients=4) as load:
            load.wait_for(200)
            os.kill(server.process.pid, signal.SIGKILL)
            time.sleep(0.5)  # the clients see it gone
    with run_server(tmp_path) as restarted:
        load.assert_all_stored(restarted)

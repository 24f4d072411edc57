"""An agent's run through the proxy whose history grows by ~1.2 KB a call (the content-store test and
bench/storage.py): what was sent, and the distinct message bytes it holds."""

import json
import random

import httpx

WORDS = ("order parcel refund weather invoice shipping customer ticket account password delivery "
         "address warehouse carrier tracking return exchange discount coupon payment card bank transfer "
         "status delayed arrived damaged missing replaced checked confirmed escalated resolved").split()


def _text(rng: random.Random, size: int) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < size:
        words.append(rng.choice(WORDS) if rng.random() < 0.8 else f"#{rng.randrange(10**6)}")
    return " ".join(words)


def run(proxy_url: str, trace_id: str, calls: int, seed: int = 7) -> tuple[list[bytes], int]:
    """Make ``calls`` chat calls on one trace, each adding a ~1.2 KB user turn and the answer to the history.

    Returns the request bodies sent and the size of the distinct messages (each counted once, as JSON)."""
    rng = random.Random(seed)
    history = [{"role": "system", "content": "You are a support agent. " + _text(rng, 600)}]
    tools = [{"type": "function", "function": {"name": "lookup_order", "description": _text(rng, 200),
                                               "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}}]
    sent = []
    headers = {"Authorization": "Bearer sk-growing", "X-Trace-ID": trace_id, "X-Agent-Name": "growing"}
    with httpx.Client(base_url=proxy_url, headers=headers, timeout=30) as client:
        for _ in range(calls):
            history.append({"role": "user", "content": _text(rng, 1150)})
            body = json.dumps({"model": "gpt-4o-mini", "messages": history, "tools": tools, "temperature": 0.2}).encode()
            answer = client.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
            answer.raise_for_status()
            sent.append(body)
            history.append(answer.json()["choices"][0]["message"])
    distinct = {json.dumps(m, sort_keys=True) for m in history} | {json.dumps(tools)}
    return sent, sum(len(m.encode()) for m in distinct)

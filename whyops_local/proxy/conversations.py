"""Which trace a proxied call belongs to.

A call with no trace header joins the trace of the earlier call whose history it continues: the
earlier request's messages plus that call's answer are a prefix of the new request's messages. The
index lives in memory (bounded, most recent first); after a restart such calls start new traces.
"""

import hashlib
from collections import OrderedDict

from django.conf import settings


class History:
    """A request's history as the digest of each of its prefixes, the agent's alone first.

    Built once per call, while upstream works on it: it is both looked up (``find``) and, continued
    by the answer, remembered for the next call.
    """

    def __init__(self, agent: str, entries: list[bytes]) -> None:
        self.digests = _chained(hashlib.sha256(agent.encode()).digest(), entries)

    def continued(self, entries: list[bytes]) -> bytes | None:
        """The digest of this history followed by ``entries``; None if that is still no history at all."""
        if len(self.digests) == 1 and not entries:
            return None
        return _chained(self.digests[-1], entries)[-1]


def _chained(start: bytes, entries: list[bytes]) -> list[bytes]:
    """``start``, then the digest of each longer prefix, each built on the previous one (linear, not quadratic)."""
    digests = [start]
    for item in entries:
        digests.append(hashlib.sha256(digests[-1] + item).digest())
    return digests


class Conversations:
    """The most recent histories (WHYOPS_PROXY_CONVERSATIONS, or ``limit``) and their traces."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._traces: OrderedDict[bytes | str, str] = OrderedDict()

    def find(self, history: History, previous_id: str | None = None) -> str | None:
        keys: list[bytes | str] = [f"id:{previous_id}"] if previous_id else []
        keys += reversed(history.digests[1:])  # the longest continued history wins
        for key in keys:
            trace_id = self._traces.get(key)
            if trace_id is not None:
                self._traces.move_to_end(key)
                return trace_id
        return None

    def remember(self, history: History, answer: list[bytes], trace_id: str, response_id: str | None = None) -> None:
        if (key := history.continued(answer)) is not None:
            self._put(key, trace_id)
        if response_id:
            self._put(f"id:{response_id}", trace_id)

    def _put(self, key: bytes | str, trace_id: str) -> None:
        self._traces[key] = trace_id
        self._traces.move_to_end(key)
        limit = self.limit if self.limit is not None else settings.WHYOPS_PROXY_CONVERSATIONS
        while len(self._traces) > limit:
            self._traces.popitem(last=False)

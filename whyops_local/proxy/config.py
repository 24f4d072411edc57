"""The proxy's knobs, read once from the environment (see README.md, "the logging proxy")."""

import os

OPENAI_BASE_URL = (os.environ.get("WHYOPS_OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
ANTHROPIC_BASE_URL = (os.environ.get("WHYOPS_ANTHROPIC_BASE_URL") or "https://api.anthropic.com").rstrip("/")
# Seconds to wait for the upstream: whole non-streamed calls, and each read of a stream.
TIMEOUT = float(os.environ.get("WHYOPS_PROXY_TIMEOUT") or 120)
STREAM_TIMEOUT = float(os.environ.get("WHYOPS_PROXY_STREAM_TIMEOUT") or 600)
# The server's own provider keys; when unset, the client's credential goes upstream unchanged.
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY") or None
ANTHROPIC_API_KEY = os.environ.get("ANTHROPIC_API_KEY") or None
# Conversations remembered for matching header-less calls to their trace (most recent kept).
CONVERSATIONS_KEPT = int(os.environ.get("WHYOPS_PROXY_CONVERSATIONS") or 50_000)

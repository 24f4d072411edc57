"""Agent version hashes, byte-compatible with the hosted WhyOps service (docs/whyops-protocol.md §3)."""

import hashlib
import json
from typing import Any

_TOOL_KEYS = ("name", "inputSchema", "outputSchema", "description")


def canonical_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata in the key order the hosted service hashes, absent (or null) keys left out."""
    canonical: dict[str, Any] = {}
    if metadata.get("systemPrompt") is not None:
        canonical["systemPrompt"] = metadata["systemPrompt"]
    if metadata.get("tools") is not None:
        canonical["tools"] = [
            {key: tool[key] for key in _TOOL_KEYS if tool.get(key) is not None} for tool in metadata["tools"]
        ]
    if metadata.get("description") is not None:
        canonical["description"] = metadata["description"]
    return canonical


def version_hash(metadata: dict[str, Any]) -> str:
    compact = json.dumps(canonical_metadata(metadata), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(compact.encode("utf-8")).hexdigest()[:32]

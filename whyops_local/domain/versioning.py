"""Agent versions: hashes byte-compatible with the hosted WhyOps service (docs/whyops-protocol.md §3), and
which version a call belongs to, by its system prompt and tool names."""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
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
    # surrogatepass: a lone surrogate (JSON allows "\udc00") hashes too; valid text hashes as plain UTF-8.
    return hashlib.sha256(compact.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class Definition:
    """An agent version as calls are matched to it: its system prompt and its tools' names."""

    id: str
    seq: int
    prompt: str
    tools: frozenset[str]
    richness: int  # how much of the tools and agent it describes: the richest definition wins


def said_prompt(value: Any) -> str | None:
    """A call's system prompt; None when it has none (it says nothing about the version then)."""
    return value.strip() or None if isinstance(value, str) else None


def said_tools(value: Any) -> frozenset[str] | None:
    """The names of a call's tools (objects or plain names); None when it offers none: a call that omits
    the tools once (a final summary) says nothing about the agent's tools."""
    if not isinstance(value, list) or not value:
        return None
    return frozenset(str(tool.get("name")) if isinstance(tool, dict) else str(tool) for tool in value)


def definition(id: str, seq: int, system_prompt: str, tools: Any, description: str = "") -> Definition:
    listed = tools if isinstance(tools, list) else []
    richness = bool(description) + sum(
        sum(1 for key in _TOOL_KEYS if tool.get(key)) if isinstance(tool, dict) else 1 for tool in listed)
    return Definition(id, seq, said_prompt(system_prompt) or "", said_tools(listed) or frozenset(), richness)


class Definitions:
    """An agent's versions, to find the one a call's system prompt and tool names belong to."""

    def __init__(self, known: Iterable[Definition] = ()) -> None:
        self._by_both: dict[tuple[str, frozenset[str]], Definition] = {}
        self._by_prompt: dict[str, Definition] = {}
        self._by_tools: dict[frozenset[str], Definition] = {}
        for found in known:
            self.add(found)

    def add(self, found: Definition) -> None:
        for table, key in ((self._by_both, (found.prompt, found.tools)), (self._by_prompt, found.prompt),
                           (self._by_tools, found.tools)):
            best = table.get(key)
            if best is None or (found.richness, found.seq) > (best.richness, best.seq):
                table[key] = found

    def match(self, prompt: str | None, tools: frozenset[str] | None) -> str | None:
        """The id of the richest (then newest) version with this prompt and these tool names; a part the
        call does not say (None) matches any. None when no version matches, or the call says nothing."""
        if prompt is not None and tools is not None:
            found = self._by_both.get((prompt, tools))
        elif prompt is not None:
            found = self._by_prompt.get(prompt)
        elif tools is not None:
            found = self._by_tools.get(tools)
        else:
            found = None
        return found.id if found else None

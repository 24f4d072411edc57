"""Which headers cross the proxy, and how credentials are kept out of storage (pure)."""

from collections.abc import Iterable, Mapping

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length",
})
# Ours, not the provider's.
WHYOPS = frozenset({"x-agent-name", "x-trace-id", "x-thread-id", "x-external-user-id"})
# Upstream is asked for identity encoding so the bytes relayed are the bytes parsed and stored; a
# body encoded anyway is relayed decoded, hence no Content-Encoding back.
NOT_FORWARDED = HOP_BY_HOP | WHYOPS | {"accept-encoding", "cookie"}
NOT_RETURNED = HOP_BY_HOP | {"content-encoding", "date", "server"}
CREDENTIALS = frozenset({"authorization", "x-api-key", "api-key", "cookie", "set-cookie", "x-goog-api-key"})
REDACTED = "[redacted]"


def _secret(name: str) -> bool:
    name = name.lower()
    return name in CREDENTIALS or any(word in name for word in ("key", "token", "secret", "auth"))


def redact(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): REDACTED if _secret(name) else value for name, value in headers}


def upstream_headers(client: Mapping[str, str], provider: str, server_key: str | None,
                     whyops_key: str | None) -> dict[str, str]:
    """The client's headers as sent upstream: ours and hop-by-hop dropped, the credential chosen.

    The server's provider key wins when set. A client credential equal to WHYOPS_API_KEY was meant
    for this server, so it never goes upstream.
    """
    forwarded = {name: value for name, value in client.items() if name.lower() not in NOT_FORWARDED}
    forwarded["accept-encoding"] = "identity"
    if whyops_key:
        for name in [n for n in forwarded if n.lower() in ("authorization", "x-api-key")]:
            if _credential(forwarded[name]) == whyops_key:
                del forwarded[name]
    if server_key:
        for name in [n for n in forwarded if n.lower() in ("authorization", "x-api-key")]:
            del forwarded[name]
        if provider == "anthropic":
            forwarded["x-api-key"] = server_key
        else:
            forwarded["authorization"] = f"Bearer {server_key}"
    return forwarded


def _credential(value: str) -> str:
    """The token of an ``Authorization`` value in any spelling of its scheme ("Bearer", "bearer", ...),
    or an ``x-api-key`` value as it is."""
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if token and scheme.lower() == "bearer" else value.strip()


def returned_headers(upstream: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in upstream if name.lower() not in NOT_RETURNED]

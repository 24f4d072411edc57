"""The logging proxy for OpenAI and Anthropic clients (docs/whyops-protocol.md §5)."""

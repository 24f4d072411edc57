"""The logging proxy for OpenAI and Anthropic clients (protocol section 5)."""

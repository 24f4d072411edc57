"""``whyops-local demo``: a server on a throwaway data folder, a fake provider it proxies to, and
scripted agents that drive both through the real proxy and ingest API."""

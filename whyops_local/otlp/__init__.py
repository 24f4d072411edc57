"""OpenTelemetry ingest: OTLP/HTTP trace exports decoded and mapped onto WhyOps events."""

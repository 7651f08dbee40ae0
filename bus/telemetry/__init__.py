"""Observability in the ecosystem's standards: OpenTelemetry spans and structured (JSON) log lines."""

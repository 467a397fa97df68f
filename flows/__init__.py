"""Orchestration: the CLI, reports, and Prefect flows that wire the library together."""

"""Compliance audit tests for LLM benchmarks (TEST06): run them and verify their logs."""

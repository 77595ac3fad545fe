"""Benchmarks: runnable measurements of the project's throughput (not tests)."""

"""Fault profiles: how often each kind of fault is injected, as :class:`~producer.config.ProducerConfig` rates.

Each is a share of the lines written (see ``FAULT_RATE_FIELDS``); pass one as ``ProducerConfig(**profile)``.
"""

from __future__ import annotations

# `make demo`: every kind often enough that each shows up in the reconciliation of 100,000 events.
DEMO = {"dup_rate": 0.02, "synthetic_dup_rate": 0.005, "late_rate": 0.02, "malformed_rate": 0.005, "invalid_rate": 0.01}

# A live run (`make follow`, the freshness benchmark): a realistic share of each kind.
LIVE = {"dup_rate": 0.01, "late_rate": 0.01, "malformed_rate": 0.002, "invalid_rate": 0.005}

# Benchmark landing data: a realistic share of every kind, conflicting duplicates included.
BENCHMARK = {"dup_rate": 0.01, "synthetic_dup_rate": 0.002, "late_rate": 0.01, "malformed_rate": 0.002, "invalid_rate": 0.005}

# The end-to-end tests: every kind, often enough that a few thousand events hold each of them many times.
TESTS = {"dup_rate": 0.03, "synthetic_dup_rate": 0.01, "late_rate": 0.05, "malformed_rate": 0.01, "invalid_rate": 0.02}

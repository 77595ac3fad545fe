"""The contract's checks as pipeline expectations: one per quarantine reason a single line can earn.

Silver's contract reader (:mod:`lakehouse.transforms.validation`) and the lateness rules give every line a
``_violation`` (null for a valid event). Each expectation says a line does not carry one reason, so the
pipeline's event log counts the lines dropped from ``silver_arrivals`` per reason, and ``silver_quarantine``
keeps them with that reason. ``conflicting_duplicate`` is not a property of a line (it needs the line Silver
kept) and is reported by ``silver_duplicates``.

Lakeflow on Databricks has ``dp.expect_all_or_drop``; open-source ``pyspark.pipelines`` (4.2) has no
expectations. :func:`expect_all_or_drop` is Databricks' where the runtime has it and otherwise the same
rows dropped by a filter, so the definitions read the same on both (the local run has no per-expectation
metrics; ``silver_quarantine`` counts the same lines by reason).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from pyspark.sql import DataFrame

from lakehouse import rules
from lakehouse.transforms import silver as silver_t

# Every reason a line earns on its own, in the contract's order, then the lateness rules.
LINE_REASONS = tuple(reason for reason in rules.QUARANTINE_REASONS if reason != rules.CONFLICTING_DUPLICATE)

SILVER_EXPECTATIONS = {
    f"not_{reason}": f"{silver_t.VIOLATION} IS NULL OR {silver_t.VIOLATION}.reason <> '{reason}'"
    for reason in LINE_REASONS
}

QueryFunction = Callable[[], DataFrame]


def expect_all_or_drop(expectations: dict[str, str]) -> Callable[[QueryFunction], QueryFunction]:
    """Drop the rows that fail any of ``expectations`` ({name: SQL condition}) from a dataset's query."""
    from pyspark import pipelines as dp

    native = getattr(dp, "expect_all_or_drop", None)
    if native is not None:
        return native(expectations)
    condition = " AND ".join(f"({sql})" for sql in expectations.values())

    def decorate(query: QueryFunction) -> QueryFunction:
        @functools.wraps(query)
        def checked() -> DataFrame:
            return query().filter(condition)

        return checked

    return decorate

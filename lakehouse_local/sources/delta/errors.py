"""The errors of the ``delta`` source, shared by its readers, writers and log reading."""

from __future__ import annotations


class DeltaSourceError(ValueError):
    """A ``delta`` read or write that the local runtime cannot do as asked."""


class DeltaChangeCommitError(DeltaSourceError):
    """A streamed table's commit updated or deleted rows, which an append stream cannot follow."""

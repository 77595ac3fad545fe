"""A scan for IP addresses in clear in every string column of Silver, Gold and ops (``make demo`` runs it).

It reads every token that :mod:`ipaddress` accepts as an address, wider than the pipeline's own rule
(:mod:`lakehouse.privacy`), and leaves out only what names no host: the unspecified address and a
browser's ``N.0.0.0`` version. The raw line of a quarantined line keeps what was sent (engineers only)
and is not scanned.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from lakehouse import catalog
from lakehouse.catalog import TableSpec
from lakehouse.tables import Lakehouse

_TOKENS = re.compile(r"[0-9A-Fa-f:.]{7,}")
RAW_COLUMNS = {"silver.quarantine": {"raw_line"}}


def _addresses(text: str) -> list[str]:
    found = []
    for token in _TOKENS.findall(text):
        token = token.strip(".:")
        try:
            address = ipaddress.ip_address(token)
        except ValueError:
            continue
        if not (address.is_unspecified or token.endswith(".0.0.0")):
            found.append(token)
    return found


def addresses_in_clear(
    tables: Lakehouse, specs: Iterable[TableSpec] = catalog.ALL_TABLES
) -> list[tuple[str, str, str]]:
    """(table, column, address) for every IP address found in a string column of Silver, Gold or ops.

    ``specs`` are the tables to scan: the notebooks' by default, or the declarative edition's datasets.
    """
    found = []
    for spec in specs:
        columns = [c.name for c in spec.columns if c.type == "STRING" and c.name not in RAW_COLUMNS.get(spec.name, ())]
        if spec.layer == "bronze" or not columns or not tables.exists(spec.name):
            continue
        for row in tables.read(spec.name, columns=columns).toLocalIterator():
            for column, value in zip(columns, row, strict=True):
                found += [(spec.name, column, address) for address in _addresses(value or "")]
    return found

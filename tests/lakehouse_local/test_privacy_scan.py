"""The scan for IP addresses in clear finds them in any string column, and leaves out what names no host."""

from __future__ import annotations

from lakehouse import catalog
from lakehouse_local.privacy_scan import addresses_in_clear
from lakehouse_local.tables import FolderLakehouse


def test_the_scan_finds_an_address_in_any_string_column_but_not_in_raw_lines(spark, tmp_path):
    lakehouse = FolderLakehouse(spark, str(tmp_path / "lh"))
    for spec in catalog.ALL_TABLES:
        lakehouse.create_table(spec)
    row = {c.name: None for c in catalog.QUARANTINE.columns} | {
        "_record_id": "r1", "reason": "invalid_format", "field": "ip_hash",
        "message": "see fe80::1 and Chrome/124.0.0.0 and 0.0.0.0", "raw_line": '{"ip_hash": "203.0.113.7"}',
    }
    lakehouse.upsert_rows([row], "silver.quarantine", app_id="t", batch_id=0)

    assert addresses_in_clear(lakehouse) == [("silver.quarantine", "message", "fe80::1")]

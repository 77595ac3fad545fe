"""Producer options: bad values are refused with the option named."""

from __future__ import annotations

import re

import pytest
from support import producer_config

from producer import ConfigError


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bucket": ""}, "--bucket"),
        ({"dup_rate": 0.6, "invalid_rate": 0.6}, "add up to 1.200"),
        ({"rate": 0}, "--rate"),
        ({"manifests_prefix": "landing/clickstream/manifests"}, "inside the landing prefix"),
        ({"start_time": "2026-05-01T00:00:00+02:00"}, "UTC"),
        ({"start_time": "yesterday"}, "--start-time"),
        ({"events": None, "duration_seconds": None}, "backfill"),
        ({"click_probability": 1.5}, "--p-click"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(overrides, message, tmp_path, monkeypatch):
    monkeypatch.delenv("LANDING_BUCKET", raising=False)
    with pytest.raises(ConfigError, match=re.escape(message)):
        producer_config(overrides.pop("bucket", "some-bucket"), tmp_path, **overrides).check()

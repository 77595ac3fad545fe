"""The declarative edition's settings: read from the pipeline configuration, the watermark derived."""

from __future__ import annotations

import pytest

from lakehouse import rules
from lakehouse.declarative.settings import PipelineSettings, key


def test_settings_read_back_from_their_configuration():
    settings = PipelineSettings("s3://b/landing", "k", max_files_per_trigger=7, max_table_files_per_trigger=1,
                                max_lateness_hours=48.0, future_tolerance_minutes=2.0)
    assert PipelineSettings.from_conf(settings.configuration()) == settings
    assert key("landing_path") == "clickstream.landing_path"


def test_unset_numbers_take_the_pipeline_rules_defaults():
    settings = PipelineSettings.from_conf({key("landing_path"): "/landing", key("hmac_key"): "k"})
    assert settings.max_lateness_hours == rules.MAX_LATENESS_HOURS
    assert settings.future_tolerance_minutes == rules.FUTURE_TOLERANCE_MINUTES
    assert settings.max_files_per_trigger == 1000


def test_the_watermark_spans_the_lateness_limit_so_no_accepted_event_is_dropped_as_late():
    settings = PipelineSettings("/landing", "k", max_lateness_hours=72, future_tolerance_minutes=5)
    assert settings.watermark_delay == f"{72 * 60 + 5} minutes"


@pytest.mark.parametrize("missing", ["landing_path", "hmac_key"])
def test_a_missing_required_setting_names_its_key_and_where_it_is_set(missing):
    conf = {key("landing_path"): "/landing", key("hmac_key"): "k"}
    del conf[key(missing)]
    with pytest.raises(ValueError, match=rf"clickstream\.{missing} is not set.*clickstream\.pipeline\.yml"):
        PipelineSettings.from_conf(conf)


def test_a_number_that_is_not_one_is_refused_naming_its_key():
    conf = {key("landing_path"): "/landing", key("hmac_key"): "k", key("max_lateness_hours"): "three days"}
    with pytest.raises(ValueError, match=r"clickstream\.max_lateness_hours must be a number"):
        PipelineSettings.from_conf(conf)

"""The notebooks' settings: what a reset rebuilds."""

from __future__ import annotations

import pytest

from lakehouse.config import PipelineConfig


@pytest.mark.parametrize(
    ("reset", "rebuilt"),
    [("false", set()), ("gold", {"gold"}), ("silver", {"silver", "gold"}), ("bronze", {"bronze", "silver", "gold"})],
)
def test_a_reset_rebuilds_its_layer_and_everything_downstream_and_bronze_only_by_name(reset, rebuilt):
    cfg = PipelineConfig(reset=reset)
    assert {layer for layer in ("bronze", "silver", "gold") if cfg.resets(layer)} == rebuilt


def test_an_unknown_reset_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"reset 'true' must be one of \['false', 'gold', 'silver', 'bronze'\]"):
        PipelineConfig(reset="true")

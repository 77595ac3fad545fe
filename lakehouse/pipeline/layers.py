"""The tables of each layer: created by 00_setup, reset and checked before a layer's stream starts."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from lakehouse import catalog
from lakehouse.config import PipelineConfig
from lakehouse.tables import Lakehouse, lakehouse_for

log = logging.getLogger(__name__)

LAYER_TABLES = {
    "bronze": (catalog.BRONZE_EVENTS, catalog.BRONZE_FILES),
    "silver": (catalog.SILVER_EVENTS, catalog.QUARANTINE),
    "gold": (*catalog.GOLD_TABLES, catalog.GOLD_KEYS),
    "gold_model": catalog.MODEL_TABLES,
}


def tables_for(spark: SparkSession, cfg: PipelineConfig) -> Lakehouse:
    """The lakehouse the widgets name, on this runtime."""
    return lakehouse_for(spark, cfg.lakehouse, checkpoint_root=cfg.checkpoint_root or None)


def setup(spark: SparkSession, cfg: PipelineConfig) -> dict[str, bool]:
    """Create the layer schemas and every table (IF NOT EXISTS). Returns {table: created}."""
    tables = tables_for(spark, cfg)
    tables.create_schemas()
    return {spec.name: tables.create_table(spec) for spec in catalog.ALL_TABLES}


def reset_layer(tables: Lakehouse, layer: str) -> None:
    """Drop a layer's tables, its checkpoint and its ``ops.pipeline_metrics`` rows together, then recreate
    the tables empty. The next run rebuilds the layer from the one above as a new stream (a new query id,
    so none of its writes is taken for one the old stream made)."""
    for spec in LAYER_TABLES[layer]:
        tables.drop(spec.name)
    tables.remove_checkpoint(layer)
    tables.delete_where(catalog.PIPELINE_METRICS.name, f"layer = '{layer}'")
    for spec in LAYER_TABLES[layer]:
        tables.create_table(spec)
    log.warning("reset %s: tables, checkpoint and metrics cleared", layer)


def prepare(spark: SparkSession, cfg: PipelineConfig, layer: str) -> Lakehouse:
    """The lakehouse a layer's stream writes: reset first when asked, and every table it needs present."""
    tables = tables_for(spark, cfg)
    if cfg.resets(layer):
        reset_layer(tables, layer)
    for spec in (*LAYER_TABLES[layer], catalog.PIPELINE_METRICS):
        if not tables.exists(spec.name):
            raise RuntimeError(f"table {spec.name} does not exist in {tables.location}: run 00_setup first")
    return tables

"""Pipeline settings, read from notebook widgets (Databricks or the local stand-in)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from lakehouse import rules

AVAILABLE_NOW = "availableNow"
NO_RESET = "false"
# What a reset rebuilds: a layer and everything downstream of it, each from the layer above. Silver and
# Gold rebuild from Bronze; Bronze only when asked by name, since it rebuilds from the landing area,
# which keeps files only as long as its retention.
# Gold has two streams: the metrics (gold) and the analytical model (gold_model); a reset of Gold resets both.
RESETS = {
    "gold": ("gold", "gold_model"),
    "silver": ("silver", "gold", "gold_model"),
    "bronze": ("bronze", "silver", "gold", "gold_model"),
}


@dataclass(frozen=True)
class PipelineConfig:
    landing_path: str = "s3://clickstream-demo/landing/clickstream"
    lakehouse: str = ".lakehouse/lakehouse"
    checkpoint_root: str = ""
    trigger: str = AVAILABLE_NOW
    watermark_delay: str = "10 minutes"
    max_lateness_hours: float = rules.MAX_LATENESS_HOURS
    future_tolerance_minutes: float = rules.FUTURE_TOLERANCE_MINUTES
    max_files_per_trigger: int = 1000
    max_table_files_per_trigger: int = 1000
    max_table_bytes_per_trigger: str = "32m"
    gold_max_table_files_per_trigger: int = 1000
    gold_max_table_bytes_per_trigger: str = "32m"
    hmac_secret: str = "clickstream/hmac_key"
    raw_retention_days: int = 30
    reset: str = NO_RESET

    def __post_init__(self) -> None:
        if self.reset != NO_RESET and self.reset not in RESETS:
            raise ValueError(f"widget reset {self.reset!r} must be one of {[NO_RESET, *RESETS]}")

    def resets(self, layer: str) -> bool:
        """True when this run rebuilds ``layer`` (its tables and checkpoint cleared first)."""
        return layer in RESETS.get(self.reset, ())

    def secret(self) -> tuple[str, str]:
        """The (scope, key) of ``hmac_secret``."""
        scope, _, key = self.hmac_secret.partition("/")
        if not scope or not key:
            raise ValueError(f"widget hmac_secret {self.hmac_secret!r} must be '<scope>/<key>' of a Databricks secret")
        return scope, key

    def trigger_kwargs(self) -> dict:
        """Keyword arguments for ``DataStreamWriter.trigger``."""
        if self.trigger == AVAILABLE_NOW:
            return {"availableNow": True}
        return {"processingTime": self.trigger}


WIDGET_HELP = {
    "landing_path": "Landing area: s3://bucket/prefix (or a local folder on a laptop)",
    "lakehouse": "Unity Catalog catalog (Databricks) or a folder (local)",
    "checkpoint_root": "Checkpoint root (empty: <lakehouse>/_checkpoints locally)",
    "trigger": "availableNow, or a processing-time interval such as '30 seconds'",
    "watermark_delay": "How far behind the newest event_time the dedup state is kept",
    "max_lateness_hours": "Events older than this (ingest_time - event_time) are quarantined as too_late",
    "future_tolerance_minutes": "Events this far after ingest_time are quarantined as future_event_time",
    "max_files_per_trigger": "Max landed files per Bronze micro-batch (Auto Loader's cloudFiles.maxFilesPerTrigger)",
    "max_table_files_per_trigger": "Max Bronze Delta files per Silver micro-batch (Bronze writes one per batch)",
    "max_table_bytes_per_trigger": "Soft max bytes of Bronze Delta files per Silver micro-batch (Delta's maxBytesPerTrigger)",
    "gold_max_table_files_per_trigger": "Max Silver Delta files per Gold micro-batch (both Gold streams: metrics and model)",
    "gold_max_table_bytes_per_trigger": "Soft max bytes of Silver Delta files per Gold micro-batch (both Gold streams)",
    "hmac_secret": "Secret scope/key of the HMAC key that hashes IP addresses (the producer's ip_hash key)",
    "raw_retention_days": "Days the raw text of landed lines is kept (bronze.events.value, silver.quarantine.raw_line)",
    "reset": "gold, silver (Silver and Gold from Bronze) or bronze (everything, from the landing area): "
    "clear that layer's tables, checkpoint and metrics and rebuild them",
}


# The widgets of the streaming notebooks (01-03): every setting but the retention job's.
STREAM_WIDGETS = tuple(f.name for f in fields(PipelineConfig) if f.name != "raw_retention_days")


def define_widgets(dbutils, *, names: tuple[str, ...] = STREAM_WIDGETS) -> None:
    """Declare the widgets a notebook takes, with defaults."""
    defaults = PipelineConfig()
    for f in fields(PipelineConfig):
        if f.name not in names:
            continue
        default = getattr(defaults, f.name)
        if f.name == "reset":
            dbutils.widgets.dropdown("reset", NO_RESET, [NO_RESET, *RESETS], WIDGET_HELP["reset"])
        elif f.name == "trigger":
            dbutils.widgets.text("trigger", str(default), WIDGET_HELP["trigger"])
        else:
            dbutils.widgets.text(f.name, str(default), WIDGET_HELP[f.name])


def from_widgets(dbutils, *, names: tuple[str, ...] = STREAM_WIDGETS) -> PipelineConfig:
    """Read the declared widgets into a :class:`PipelineConfig` (undeclared ones keep their defaults)."""
    values: dict = {}
    for f in fields(PipelineConfig):
        if f.name not in names:
            continue
        raw = dbutils.widgets.get(f.name).strip()
        if f.type in ("float", float):
            values[f.name] = float(raw)
        elif f.type in ("int", int):
            values[f.name] = int(raw)
        else:
            values[f.name] = raw
    return PipelineConfig(**values)

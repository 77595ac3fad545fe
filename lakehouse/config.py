"""Pipeline settings, read from notebook widgets (Databricks or the local stand-in)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from lakehouse import rules

AVAILABLE_NOW = "availableNow"


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
    gold_max_table_files_per_trigger: int = 1000
    hmac_secret: str = "clickstream/hmac_key"
    reset: bool = False

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
    "gold_max_table_files_per_trigger": "Max Silver Delta files per Gold micro-batch (each recomputes the days it touched)",
    "hmac_secret": "Secret scope/key of the HMAC key that hashes IP addresses (the producer's ip_hash key)",
    "reset": "true: drop this notebook's tables and checkpoints first, then rebuild",
}


def define_widgets(dbutils, *, names: tuple[str, ...] | None = None) -> None:
    """Declare the widgets a notebook takes, with defaults."""
    defaults = PipelineConfig()
    for f in fields(PipelineConfig):
        if names is not None and f.name not in names:
            continue
        default = getattr(defaults, f.name)
        if f.name == "reset":
            dbutils.widgets.dropdown("reset", "false", ["false", "true"], WIDGET_HELP["reset"])
        elif f.name == "trigger":
            dbutils.widgets.text("trigger", str(default), WIDGET_HELP["trigger"])
        else:
            dbutils.widgets.text(f.name, str(default), WIDGET_HELP[f.name])


def from_widgets(dbutils, *, names: tuple[str, ...] | None = None) -> PipelineConfig:
    """Read the declared widgets into a :class:`PipelineConfig` (undeclared ones keep their defaults)."""
    values: dict = {}
    for f in fields(PipelineConfig):
        if names is not None and f.name not in names:
            continue
        raw = dbutils.widgets.get(f.name).strip()
        if f.name == "reset":
            values[f.name] = raw.lower() == "true"
        elif f.type in ("float", float):
            values[f.name] = float(raw)
        elif f.type in ("int", int):
            values[f.name] = int(raw)
        else:
            values[f.name] = raw
    return PipelineConfig(**values)

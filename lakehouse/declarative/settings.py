"""The declarative edition's settings: the pipeline configuration keys its definitions read.

A Lakeflow pipeline passes its ``configuration`` to the definitions as Spark configuration, on Databricks
(the bundle's ``resources/clickstream.pipeline.yml``) and locally (``spark-pipelines``' spec) alike; the
definitions read it with ``spark.conf.get``. Each key is ``clickstream.<setting>``.

The watermark is not a setting here. The notebooks keep a short watermark and recover what it drops in
``foreachBatch``; a declarative flow has no ``foreachBatch``, so whatever ``dropDuplicatesWithinWatermark``
drops as late is gone from Silver. Its watermark therefore spans the lateness limit
(``max_lateness_hours`` + ``future_tolerance_minutes``): an event the lateness rules accept is never behind
it while the landing area is read in the order it was written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Protocol

from lakehouse import rules

CONF_PREFIX = "clickstream."


class Conf(Protocol):
    """What is read of ``spark.conf`` (a ``RuntimeConfig``)."""

    def get(self, key: str, default: str | None = None) -> str | None: ...


@dataclass(frozen=True)
class PipelineSettings:
    """The pipeline's configuration, typed.

    ``hmac_key`` keys the hash that replaces IP addresses (the producer's ``CLICKSTREAM_HMAC_KEY``); the
    bundle passes it as a secret reference, so its value never appears in the pipeline's settings.
    """

    landing_path: str
    hmac_key: str
    max_files_per_trigger: int = 1000
    max_table_files_per_trigger: int = 1000
    max_lateness_hours: float = rules.MAX_LATENESS_HOURS
    future_tolerance_minutes: float = rules.FUTURE_TOLERANCE_MINUTES

    @property
    def watermark_delay(self) -> str:
        """Silver's watermark: the lateness limit, so no event the lateness rules accept is dropped as late."""
        return f"{math.ceil(self.max_lateness_hours * 60 + self.future_tolerance_minutes)} minutes"

    @classmethod
    def from_conf(cls, conf: Conf) -> PipelineSettings:
        values: dict = {}
        for f in fields(cls):
            raw = conf.get(key(f.name), None)
            if raw is None or not str(raw).strip():
                if f.name in ("landing_path", "hmac_key"):
                    raise ValueError(
                        f"pipeline configuration {key(f.name)} is not set: the bundle sets it "
                        f"(resources/clickstream.pipeline.yml), and so does `make sdp` locally."
                    )
                continue
            raw = str(raw).strip()
            try:
                values[f.name] = {"int": int, "float": float}.get(str(f.type), str)(raw)
            except ValueError:
                raise ValueError(f"pipeline configuration {key(f.name)} must be a number, got {raw!r}") from None
        return cls(**values)

    def configuration(self) -> dict[str, str]:
        """These settings as a pipeline ``configuration`` (what :meth:`from_conf` reads back)."""
        return {key(f.name): str(getattr(self, f.name)) for f in fields(self)}


def key(setting: str) -> str:
    """The configuration key of a setting: ``clickstream.<setting>``."""
    return CONF_PREFIX + setting

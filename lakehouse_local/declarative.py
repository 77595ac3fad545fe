"""The declarative edition on a laptop: ``spark-pipelines run`` over ``databricks/pipelines/clickstream``.

:class:`LocalPipeline` owns one folder: the pipeline specs it writes (``spark-pipeline-step<n>.yml``, one per
step of an update: the definitions, the configuration the bundle passes on Databricks, the storage for
checkpoints) and the update's plan (``update.json``), the Hive metastore (a local
Derby database, so a second run finds the first run's tables and continues incrementally), the
``spark-warehouse`` where tables land as parquet, and the state of the local ``cloudFiles`` source.

``spark-pipelines``' launcher runs an update's steps in one process (:mod:`lakehouse_local.declarative_update`);
it starts a Spark Connect server of its own (a JVM and Python workers), which registers the
local ``cloudFiles`` source from the ``pyspark_cloudfiles`` package on ``PYTHONPATH``; the S3 endpoint
reaches it as it reaches the notebooks, through ``AWS_ENDPOINT_URL`` in the environment it starts with.
:class:`WarehouseTables` then reads the tables by name, as the notebooks' table layer does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyspark
import yaml

from lakehouse import catalog, privacy
from lakehouse.declarative import datasets
from lakehouse.declarative.settings import PipelineSettings
from lakehouse_local import declarative_update
from lakehouse_local.session import REPO_ROOT, java_options, session_conf
from lakehouse_local.sources.cloudfiles.source import STATE_ROOT_ENV

DEFINITIONS = REPO_ROOT / "databricks" / "pipelines" / "clickstream"
# pyspark 4.2.0's Spark Connect server analyses a deduplication as soon as its flow is registered (SPARK-57489),
# before the pipeline has run: the table it reads must exist by then, and the pipeline no longer sees that the
# flow reads one of its own tables, so would not wait for it. A local update therefore runs in two steps: the
# definitions before this file (up to silver_arrivals), then all of them, refreshing only the datasets of this
# file and the ones after it. On Databricks the pipeline is one update.
DEDUP_DEFINITIONS = "03_silver_events.py"
PIPELINE_NAME = "clickstream_declarative"
# A line of spark-pipelines' output that reports an error: an ERROR log line, an exception, a Python traceback.
ERROR_LINE = re.compile(r"\bERROR\b|\w(Exception|Error)\b|^Traceback ")
# spark-pipelines' progress lines that end something: a flow that completed or failed, the run's end.
PROGRESS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: (Flow \S+ (has \w+|is FAILED)|Run is \w+)")
RUNTIME_SQL_CONF = (
    "spark.sql.session.timeZone",
    "spark.sql.shuffle.partitions",
    "spark.sql.execution.arrow.pyspark.enabled",
    "spark.sql.streaming.stateStore.providerClass",
    "spark.sql.adaptive.enabled",
    "spark.sql.autoBroadcastJoinThreshold",
)


def settings_for(landing: str, *, max_files_per_trigger: int = 1000, max_table_files_per_trigger: int = 1000) -> PipelineSettings:
    """The pipeline configuration of a local run: the landing area, and the HMAC key the notebooks use here."""
    return PipelineSettings(
        landing_path=landing,
        hmac_key=privacy.hmac_key().decode(),
        max_files_per_trigger=max_files_per_trigger,
        max_table_files_per_trigger=max_table_files_per_trigger,
    )


def first_error(output: str, lines: int = 40) -> str:
    """The first lines of ``output`` from the first one that reports an error (a Java or Python exception,
    an ERROR log line), or its first lines if none does: where the cause of a failed update is, when its
    end shows only what followed from it."""
    text = output.splitlines()
    start = next((i for i, line in enumerate(text) if ERROR_LINE.search(line)), 0)
    return "\n".join(text[start:start + lines])


@dataclass(frozen=True)
class LocalPipeline:
    """The declarative pipeline's local run folder, and how ``spark-pipelines`` runs it."""

    folder: Path

    @property
    def plan_path(self) -> Path:
        """The update's steps, in order: each a spec file and the datasets it refreshes."""
        return self.folder / "update.json"

    def step_spec_path(self, step: int) -> Path:
        """The pipeline spec of one step of an update (``spark-pipelines run --spec`` takes it as it is)."""
        return self.folder / f"spark-pipeline-step{step}.yml"

    @property
    def warehouse(self) -> Path:
        return self.folder / "spark-warehouse"

    def spec(self, settings: PipelineSettings, definitions: list[Path]) -> dict:
        """The pipeline spec: what the bundle's pipeline resource says on Databricks, for a local run.

        Its configuration is the pipeline's settings and the local runtime SQL configuration (the notebooks'
        session's: small shuffles, no adaptive planning, state in RocksDB, UTC). ``definitions`` are listed one
        file each, in order (a folder's files would be registered in the order the file system lists them).
        """
        return {
            "name": PIPELINE_NAME,
            "storage": (self.folder / "storage").resolve().as_uri(),
            "configuration": {**self.sql_conf(), **settings.configuration()},
            "libraries": [{"glob": {"include": os.path.relpath(path, self.folder)}} for path in definitions],
        }

    @staticmethod
    def steps() -> list[tuple[list[Path], list[str]]]:
        """The update's steps: (definitions registered, datasets refreshed; empty for all of them)."""
        files = sorted(DEFINITIONS.glob("*.py"))
        before = [path for path in files if path.name < DEDUP_DEFINITIONS]
        deduplicated = datasets.DATASETS.index(catalog.SILVER_EVENTS)  # DATASETS is in dependency order
        return [(before, []), (files, [datasets.dataset_name(spec) for spec in datasets.DATASETS[deduplicated:]])]

    @staticmethod
    def sql_conf() -> dict[str, str]:
        """The runtime SQL settings of the local session (:func:`lakehouse_local.session.session_conf`)."""
        return {name: value for name, value in session_conf().items() if name in RUNTIME_SQL_CONF}

    def spark_conf(self) -> dict[str, str]:
        """What the Connect server starts with: a Hive metastore in the folder (``metastore_db``, the process's
        working directory), so a second run finds the first run's tables (and the deduplication its table, see
        :data:`DEDUP_DEFINITIONS`), and the warehouse.

        Few on purpose: pyspark 4.2.0 hands spark-submit's configuration to the server it starts in groups of
        ten entries and keeps only the last group (``_start_connect_server``), so beyond four of these (with
        the six spark-submit adds) some are silently lost. Runtime SQL settings travel in the spec instead.
        """
        return {
            "spark.sql.catalogImplementation": "hive",
            "spark.sql.warehouse.dir": str(self.warehouse.resolve()),
            "spark.driver.memory": session_conf()["spark.driver.memory"],
            "spark.ui.showConsoleProgress": "false",
        }

    def command(self) -> list[str]:
        """What ``spark-pipelines`` runs, with :mod:`lakehouse_local.declarative_update` in place of pyspark's
        command line: ``spark-class SparkPipelines <declarative_update.py> [--conf k=v ...] <plan>``."""
        spark_home = Path(pyspark.__file__).parent
        command = [str(spark_home / "bin" / "spark-class"), "org.apache.spark.deploy.SparkPipelines",
                   declarative_update.__file__]
        for name, value in self.spark_conf().items():
            command += ["--conf", f"{name}={value}"]
        return [*command, str(self.plan_path.resolve())]

    def environment(self) -> dict[str, str]:
        """What the Connect server and its Python workers start with: this Python, the repository on the path
        (definitions import ``lakehouse``; Spark finds ``pyspark_cloudfiles``), UTC, and ``cloudFiles``' state."""
        path = [str(REPO_ROOT), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
        return {
            **os.environ,
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(path)),
            "TZ": "UTC",
            STATE_ROOT_ENV: str((self.folder / "cloudfiles").resolve()),
            # The local session's JIT settings and flags of your own (see lakehouse_local.session): spark-submit's
            # configuration has no room left for spark.driver.extraJavaOptions (spark_conf).
            "JAVA_TOOL_OPTIONS": f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} {java_options()}".strip(),
        }

    def run(self, settings: PipelineSettings, *, echo: bool = False, timeout_s: float = 1800) -> float:
        """Run one update of the pipeline (in :meth:`steps`); returns the seconds it took.

        ``echo`` streams ``spark-pipelines``' progress (each flow's state) to stdout; otherwise its output is
        kept and shown only if the run fails.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        started = time.time()
        plan = []
        for step, (definitions, refresh) in enumerate(self.steps(), start=1):
            spec = self.step_spec_path(step)
            spec.write_text(yaml.safe_dump(self.spec(settings, definitions), sort_keys=False))
            plan.append({"spec": str(spec.resolve()), "refresh": refresh})
        self.plan_path.write_text(json.dumps(plan, indent=2))
        succeeded, output = self._spark_pipelines(echo=echo, timeout_s=timeout_s)
        self.log_path.write_text(output)
        if not succeeded:
            raise RuntimeError(
                f"spark-pipelines failed (plan {self.plan_path}; its whole output is in {self.log_path}).\n"
                f"The first error it printed:\n{first_error(output)}\n...\nIts last lines:\n{output[-3000:]}"
            )
        return time.time() - started

    @property
    def log_path(self) -> Path:
        """Where the last update's whole output is kept."""
        return self.folder / "update.log"

    def _spark_pipelines(self, *, echo: bool, timeout_s: float) -> tuple[bool, str]:
        """Run the update's steps in one ``spark-pipelines`` process: whether it succeeded, and its output.
        ``echo`` prints its progress lines (the ones it stamps with a time: each flow's state) as they come."""
        process = subprocess.Popen(
            self.command(), cwd=self.folder, env=self.environment(), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + timeout_s
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if echo and PROGRESS.match(line):
                print("  " + line.rstrip(), flush=True)
            if time.time() > deadline:
                process.kill()
                lines.append(f"killed after {timeout_s:.0f} s\n")
                break
        return process.wait() == 0, "".join(lines)


class WarehouseTables:
    """The pipeline's tables, read from the warehouse as parquet, by the names both editions share
    (``silver.events``, ``gold.daily_kpis``) or their dataset names (``silver_events``)."""

    def __init__(self, spark, warehouse: Path) -> None:
        self.spark = spark
        self.warehouse = Path(warehouse)

    def path(self, name: str) -> Path:
        return self.warehouse / datasets.NAMES.get(name, name)

    def exists(self, name: str) -> bool:
        return self.path(name).is_dir()

    def read(self, name: str, columns: list[str] | None = None):
        frame = self.spark.read.parquet(str(self.path(name)))
        return frame.select(*columns) if columns else frame

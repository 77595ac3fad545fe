"""Local SparkSession factory: open-source Spark configured like a small Databricks cluster.

Delta Lake's JVM jars cannot be fetched here, so the session registers Spark Python data sources
named ``cloudFiles`` and ``delta`` (built on boto3 and delta-rs) instead. Notebooks then use
``spark.readStream.format("cloudFiles")`` and ``.format("delta")`` exactly as on Databricks.

Two modes, the two ways Databricks runs notebooks:

* classic (:func:`get_or_create_session`): the notebook's ``spark`` drives the JVM through py4j, as on a
  classic cluster in dedicated access mode;
* Spark Connect (:func:`connect_session`): the notebook's ``spark`` is a Spark Connect client of a
  server in this process, as on serverless and standard access mode. ``foreachBatch`` functions then
  run in a Python process of their own, with no ``_jdf``, ``sparkContext`` or caching: code that runs
  here runs there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# What lakehouse.tables.lakehouse_for returns to the notebooks on this runtime.
TABLES = "lakehouse_local.tables:FolderLakehouse"

log = logging.getLogger(__name__)


def _python_path() -> str:
    parts = [str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(parts))


def _configure_environment() -> None:
    """What Spark's Python workers and the notebooks need, set before the JVM starts (it inherits it)."""
    from lakehouse import privacy
    from lakehouse.tables import TABLES_ENV

    _use_installed_pyspark_in_workers()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ["PYTHONPATH"] = _python_path()
    os.environ.setdefault("TZ", "UTC")
    os.environ[TABLES_ENV] = TABLES
    # dbutils.secrets reads clickstream/hmac_key from here; unset, it is the producer's demo key.
    os.environ.setdefault(privacy.HMAC_KEY_ENV, privacy.DEFAULT_HMAC_KEY)


def _use_installed_pyspark_in_workers() -> None:
    """Point ``SPARK_HOME`` at a folder of links to the installed pyspark, leaving out its ``python/`` folder (the zips).

    Spark puts ``$SPARK_HOME/python/lib/pyspark.zip`` first on its Python workers' path. pip's pyspark ships
    that zip without bytecode, so every Python process Spark starts compiles pyspark again: about a second
    for a stream's source runner or a data source planner. Without the zips, workers import the installed
    package and its cached bytecode (``python -m benchmarks.stream_start`` compares the two). A ``SPARK_HOME``
    set by the user is kept, and where links cannot be made (Windows without the privilege) nothing changes.
    """
    import pyspark

    package = Path(pyspark.__file__).resolve().parent
    if os.environ.get("SPARK_HOME") or not (package / "python" / "lib" / "pyspark.zip").exists():
        return
    digest = hashlib.sha256(f"{package} {pyspark.__version__}".encode()).hexdigest()[:12]
    home = Path(tempfile.gettempdir()) / f"clickstream-spark-home-{digest}"
    if not home.is_dir():
        building = Path(tempfile.mkdtemp(prefix=home.name + "-", dir=home.parent))
        try:
            building.chmod(0o755)
            for entry in package.iterdir():
                if entry.name != "python":
                    (building / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
            building.rename(home)
        except OSError:  # another process made it first, or links are not allowed here
            shutil.rmtree(building, ignore_errors=True)
            if not home.is_dir():
                log.info("SPARK_HOME left unset: cannot link %s into %s", package, home)
                return
    os.environ["SPARK_HOME"] = str(home)


# Extra flags for the local JVM, appended to the runtime's own (a later flag overrides an earlier one).
JAVA_OPTIONS_ENV = "LAKEHOUSE_JAVA_OPTIONS"
# The JIT's first tier only. A micro-batch runs much of Spark's code briefly, so a JVM minutes old is still
# compiling it for peak speed, and its compiler threads took more CPU than Spark's tasks (see Performance).
# The first tier alone would shrink the code cache to 48 MB, which a long run's generated classes fill (the JIT
# then stops and Spark loses threads to "Out of space in CodeCache"), so the cache keeps the default 240 MB.
# `LAKEHOUSE_JAVA_OPTIONS=-XX:TieredStopAtLevel=4` restores both tiers.
FIRST_TIER_JIT = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"
# The parallel collector, not G1 (the JVM's default on two cores or more). Spark's tasks here run for throughput in
# a 4 GiB heap, and G1's write barriers, which every store of a reference in compiled code pays, slowed them more
# than G1's shorter pauses are worth to a micro-batch (see Performance).
# `LAKEHOUSE_JAVA_OPTIONS="-XX:-UseParallelGC -XX:+UseG1GC"` brings G1 back.
THROUGHPUT_GC = "-XX:+UseParallelGC"


def java_options() -> str:
    """The local JVMs' flags beyond the session's own: the JIT's first tier and the parallel collector, then
    ``$LAKEHOUSE_JAVA_OPTIONS``."""
    return " ".join([FIRST_TIER_JIT, THROUGHPUT_GC, *os.environ.get(JAVA_OPTIONS_ENV, "").split()])


def session_conf(*, shuffle_partitions: int = 2, driver_memory: str | None = None) -> dict[str, str]:
    """The local Spark configuration, the same in both modes."""
    return {
        "spark.driver.memory": driver_memory or os.environ.get("LAKEHOUSE_DRIVER_MEMORY", "4g"),
        "spark.sql.session.timeZone": "UTC",
        # A larger thread stack: Spark's regex-based message handling recurses over long plan strings. The
        # JVM exits when its heap runs out: Spark would otherwise wait forever for a result lost to the error
        # (a stream that neither progresses nor fails), and the exit names the cause on stderr.
        # $LAKEHOUSE_JAVA_OPTIONS adds flags of your own (a profiler, the JIT's settings: see Performance).
        "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Xss16m -XX:+ExitOnOutOfMemoryError {java_options()}",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": os.environ.get("SPARK_LOG_LEVEL", "ERROR"),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Streaming state off the JVM heap, so dedup state is bounded by the watermark, not the heap.
        "spark.sql.streaming.stateStore.providerClass":
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
        # Micro-batches here are small: planning each stage adaptively costs more than it saves, and the
        # lookups and key sets they join with fit in memory.
        "spark.sql.adaptive.enabled": "false",
        "spark.sql.autoBroadcastJoinThreshold": str(256 * 1024 * 1024),
        # Spark keeps the classes it compiles for a query's generated code in a cache of 100 by default. A
        # pipeline's streams generate a few hundred distinct ones, so with 100 every micro-batch compiled
        # most of its code again; with this many, a stream's later batches reuse what its first compiled.
        "spark.sql.codegen.cache.maxEntries": "2000",
        # pyspark records the Python call site of every column function it builds, for error messages:
        # several round trips to the JVM per `F.col`, about a fifth of a Gold micro-batch's driver time.
        "spark.python.sql.dataFrameDebugging.enabled": "false",
        "spark.sql.warehouse.dir": str(Path(os.environ.get("LAKEHOUSE_WAREHOUSE", "spark-warehouse")).resolve()),
    }


def get_or_create_session(
    app_name: str = "clickstream-lakehouse",
    *,
    shuffle_partitions: int = 2,
    driver_memory: str | None = None,
    cores: int | str = "*",
    extra_conf: dict[str, str] | None = None,
):
    """Start (or return) the local classic session with the `cloudFiles` and `delta` sources registered.

    ``driver_memory`` defaults to ``$LAKEHOUSE_DRIVER_MEMORY`` or 4g: local mode runs every task in
    the driver JVM, and a micro-batch holds its rows, the dedup lookup and the rows handed to delta-rs
    at once.
    """
    from pyspark.sql import SparkSession

    _configure_environment()
    conf = {**session_conf(shuffle_partitions=shuffle_partitions, driver_memory=driver_memory), **(extra_conf or {})}
    spark = SparkSession.builder.appName(app_name).master(f"local[{cores}]").config(map=conf).getOrCreate()
    register_sources(spark)
    return spark


def connect_session(
    app_name: str = "clickstream-lakehouse",
    *,
    shuffle_partitions: int = 2,
    driver_memory: str | None = None,
    cores: int | str = "*",
):
    """A Spark Connect session on a local Connect server, with the `cloudFiles` and `delta` sources registered.

    The server runs in this process, as ``builder.remote("local[...]")`` starts it, but on a free port rather
    than the fixed 15002, so two local runs (a test suite beside ``make demo CONNECT=1``) never share a server.
    From then on this process is a Spark Connect client, as a serverless notebook is: a classic session
    cannot run beside it here.
    """
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    _configure_environment()
    opts = session_conf(shuffle_partitions=shuffle_partitions, driver_memory=driver_memory)
    port = _free_port()
    opts.update({"spark.app.name": app_name, "spark.connect.grpc.binding.port": str(port)})
    # What remote("local[...]") does, with the port known to the client (stop() then stops the server too).
    os.environ["SPARK_LOCAL_REMOTE"] = "1"
    ConnectSession._start_connect_server(f"local[{cores}]", opts)
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
    # The client session takes only the SQL settings; the server started with the rest.
    runtime = {k: v for k, v in opts.items() if k.startswith("spark.sql.") and k != "spark.sql.warehouse.dir"}
    spark = ConnectSession.builder.remote(f"sc://localhost:{port}").config(map=runtime).getOrCreate()
    register_sources(spark)
    return spark


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def register_sources(spark) -> None:
    """Register the `cloudFiles` and `delta` Python data sources on ``spark``."""
    from lakehouse_local.sources.cloudfiles import CloudFilesDataSource
    from lakehouse_local.sources.delta import DeltaDataSource

    spark.dataSource.register(CloudFilesDataSource)
    spark.dataSource.register(DeltaDataSource)

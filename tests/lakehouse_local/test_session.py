"""The local session's environment: what Spark's Python workers start with."""

from __future__ import annotations

import os
from pathlib import Path


def test_python_workers_import_the_installed_pyspark_not_the_zip_in_spark_home(spark):
    """pip's pyspark ships ``python/lib/pyspark.zip`` without bytecode, and Spark puts it first on its workers'
    path: each Python process Spark starts would compile pyspark again. The session's ``SPARK_HOME`` leaves it out."""
    import pyspark
    from pyspark.sql import functions as F

    @F.udf("string")
    def pyspark_file(_):
        import pyspark as worker_pyspark

        return worker_pyspark.__file__

    worker_file = spark.range(1).select(pyspark_file("id")).first()[0]
    assert ".zip" not in worker_file
    assert Path(worker_file).resolve() == Path(pyspark.__file__).resolve()
    home = Path(os.environ["SPARK_HOME"])
    assert (home / "jars").is_dir() and (home / "bin" / "spark-submit").exists()
    assert not (home / "python").exists()


def test_a_spark_home_set_by_the_user_is_kept(monkeypatch, tmp_path):
    from lakehouse_local import session

    monkeypatch.setenv("SPARK_HOME", str(tmp_path))
    session._use_installed_pyspark_in_workers()
    assert os.environ["SPARK_HOME"] == str(tmp_path)


def test_generated_code_stays_compiled_across_more_queries_than_sparks_default_cache_holds(spark):
    """Spark caches the classes it compiles for generated code, 100 by default: fewer than a pipeline's streams
    generate, so each micro-batch compiled most of its code again. The session keeps many more."""
    codegen = spark._jvm.org.apache.spark.metrics.source.CodegenMetrics

    def run(i: int) -> None:
        # The literal is written into the generated code, so each i compiles classes of its own (two).
        assert spark.range(3).selectExpr(f"id * {i + 7919} AS v").collect()[2].v == 2 * (i + 7919)

    distinct = 75
    for i in range(distinct):
        run(i)
    compiled = codegen.METRIC_COMPILATION_TIME().getCount()
    for i in range(10):
        run(i)
    assert codegen.METRIC_COMPILATION_TIME().getCount() == compiled


def test_building_a_column_records_no_python_call_site(spark, monkeypatch):
    """pyspark records the Python call site of each column function for its error messages, at five calls into the
    JVM a function: a fifth of a Gold micro-batch's driver time. The local session turns it off."""
    from pyspark.errors import utils
    from pyspark.sql import functions as F

    captured = []
    monkeypatch.setattr(utils, "_capture_call_site", lambda depth: captured.append(depth) or "")
    frame = spark.range(3).select(F.upper(F.col("id").cast("string")).alias("v"), (F.col("id") + 1).alias("w"))
    assert [r.w for r in frame.collect()] == [1, 2, 3]
    assert captured == []


def test_the_local_jvm_compiles_with_the_first_tier_and_keeps_room_for_a_long_runs_code(spark):
    """The local JVM compiles with the JIT's first tier only, which alone shrinks the code cache to 48 MB: a
    whole suite's generated classes filled it, and Spark then lost threads to "Out of space in CodeCache for
    adapters". The code cache keeps the default tiered JVM's 240 MB."""
    arguments = list(spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert "-XX:TieredStopAtLevel=1" in arguments, arguments
    management = spark._jvm.java.lang.management.ManagementFactory
    pools = [pool for pool in management.getMemoryPoolMXBeans() if "Code" in pool.getName()]
    assert pools, "the JVM reports its code cache"
    reserved = sum(pool.getUsage().getMax() for pool in pools)
    assert reserved >= 240 * 1024 * 1024, f"{reserved / 2**20:.0f} MB reserved for compiled code"


def test_the_local_jvm_collects_garbage_with_the_parallel_collector(spark):
    """G1, the JVM's default, slowed Spark's tasks with its write barriers; the parallel collector does not."""
    management = spark._jvm.java.lang.management.ManagementFactory
    collectors = {bean.getName() for bean in management.getGarbageCollectorMXBeans()}
    assert collectors == {"PS Scavenge", "PS MarkSweep"}, collectors


def test_java_options_of_your_own_are_added_to_the_runtimes(monkeypatch):
    from lakehouse_local.session import JAVA_OPTIONS_ENV, session_conf

    monkeypatch.delenv(JAVA_OPTIONS_ENV, raising=False)
    assert session_conf()["spark.driver.extraJavaOptions"].split()[-1] == "-XX:+UseParallelGC"
    monkeypatch.setenv(JAVA_OPTIONS_ENV, " -XX:TieredStopAtLevel=4  -XX:StartFlightRecording=filename=run.jfr ")
    flags = session_conf()["spark.driver.extraJavaOptions"].split()
    # Last, so that a flag of your own overrides the runtime's (the JVM takes the last of a repeated -XX flag).
    assert flags[-2:] == ["-XX:TieredStopAtLevel=4", "-XX:StartFlightRecording=filename=run.jfr"]
    assert {"-Duser.timezone=UTC", "-XX:+ExitOnOutOfMemoryError", "-XX:TieredStopAtLevel=1"} <= set(flags)

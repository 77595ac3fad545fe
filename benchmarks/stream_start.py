"""``python -m benchmarks.stream_start``: what starting a stream of a Python data source costs locally.

Every notebook starts one stream; the tests start hundreds, and each ``availableNow`` run of the pipeline
starts four. Spark runs a Python data source's stream through a Python process of its own (the source
runner), started with the stream. That process imports pyspark from ``$SPARK_HOME/python/lib/pyspark.zip``,
which Spark puts first on its workers' path and which pip's pyspark ships without bytecode.

Two settings, each in a process of its own (a JVM takes ``SPARK_HOME`` when it starts), alternating:

- **pyspark's zip**: ``SPARK_HOME`` is the installed pyspark package, as pyspark sets it by default;
- **as configured**: the local session's ``SPARK_HOME`` (``lakehouse_local.session``), without the zip.

Each process creates a small Delta table, starts one warm-up stream, then ``--streams`` streams one after
another, as a notebook does: ``readStream.format("delta")`` → ``foreachBatch`` → ``trigger(availableNow)``.
Reported: the median time from ``start()`` to the stream's first trigger, and from ``start()`` to its end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks import emit
from benchmarks.procmem import load_average

SETTINGS = ("pyspark's zip", "as configured")


def _streams(count: int) -> dict:
    """In this process: ``count`` streams of the ``delta`` source, one after another (after a warm-up one)."""
    import pyarrow as pa

    from lakehouse_local import delta_rs
    from lakehouse_local.session import get_or_create_session

    spark = get_or_create_session("benchmark-stream-start")
    folder = Path(tempfile.mkdtemp(prefix="stream-start-"))
    table = str(folder / "table")
    delta_rs.write(table, pa.table({"id": list(range(100))}))
    first_trigger, total = [], []
    for index in range(count + 1):
        writer = (
            spark.readStream.format("delta").load(table).writeStream.foreachBatch(lambda batch, batch_id: None)
            .option("checkpointLocation", str(folder / f"checkpoint-{index}")).trigger(availableNow=True)
        )
        started = time.time()
        query = writer.start()
        query.awaitTermination()
        ended = time.time()
        trigger = datetime.fromisoformat(query.recentProgress[0]["timestamp"].replace("Z", "+00:00")).timestamp()
        if index:  # the first stream starts the Python daemon and warms the JVM
            first_trigger.append(trigger - started)
            total.append(ended - started)
    spark.stop()
    return {
        "spark_home": os.environ.get("SPARK_HOME"),
        "first_trigger_s": round(statistics.median(first_trigger), 3),
        "stream_s": round(statistics.median(total), 3),
    }


def _measure(setting: str, count: int) -> dict:
    import pyspark

    env = dict(os.environ)
    env.pop("SPARK_HOME", None)
    if setting == "pyspark's zip":
        env["SPARK_HOME"] = str(Path(pyspark.__file__).resolve().parent)
    command = [sys.executable, "-m", "benchmarks.stream_start", "--child", "--streams", str(count)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode:
        raise RuntimeError(f"{setting}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(count: int, rounds: int) -> dict:
    before = load_average()
    runs: dict[str, list[dict]] = {setting: [] for setting in SETTINGS}
    for index in range(rounds):
        order = SETTINGS if index % 2 == 0 else tuple(reversed(SETTINGS))
        for setting in order:
            runs[setting].append(_measure(setting, count))
    medians = {
        setting: {key: round(statistics.median(r[key] for r in results), 3) for key in ("first_trigger_s", "stream_s")}
        for setting, results in runs.items()
    }
    zip_, ours = medians["pyspark's zip"], medians["as configured"]
    return {
        "what": f"{count} streams of the delta source per process (after a warm-up one), {rounds} processes per "
        "setting, alternating; medians",
        "runs": runs,
        "medians": medians,
        "ratio_first_trigger": round(ours["first_trigger_s"] / zip_["first_trigger_s"], 2),
        "load_average_before": before,
        "load_average_after": load_average(),
    }


def summary_rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    if "error" in result:
        return [("Stream start", f"failed ({result['error']})", "", "", "")]
    zip_, ours = result["medians"]["pyspark's zip"], result["medians"]["as configured"]
    before, after = result.get("load_average_before"), result.get("load_average_after")
    return [(
        "Stream start · `start()` → first trigger of a `delta` stream",
        f"{ours['first_trigger_s']:.2f} s (with pyspark's zip {zip_['first_trigger_s']:.2f} s = "
        f"{result['ratio_first_trigger']}×); whole stream {ours['stream_s']:.2f} s vs {zip_['stream_s']:.2f} s",
        "", "", f"{before[0]:.1f} → {after[0]:.1f}" if before and after else "",
    )]


def details(result: dict) -> list[str]:
    if "error" in result:
        return [f"- failed ({result['error']}); log {result.get('log')}"]
    out = [f"- {result['what']}."]
    for setting, runs in result["runs"].items():
        figures = ", ".join(f"{r['first_trigger_s']} s / {r['stream_s']} s" for r in runs)
        out.append(f"- {setting} (first trigger / whole stream, per process): {figures}")
    out.append(f"- load average before/after: {result.get('load_average_before')} / {result.get('load_average_after')}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream_start", description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=8, help="streams timed per process")
    parser.add_argument("--rounds", type=int, default=2, help="processes per setting")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_streams(args.streams)))
        return 0
    return emit({"name": "stream_start", **run(args.streams, args.rounds)}, args.out)


if __name__ == "__main__":
    raise SystemExit(main())

"""One update of the declarative pipeline, its steps in one process: what ``spark-pipelines run`` does, once per step.

``spark-pipelines`` is a launcher (``spark-class org.apache.spark.deploy.SparkPipelines``) that starts a JVM and
runs pyspark's pipeline command line in it. :class:`lakehouse_local.declarative.LocalPipeline` starts the same
launcher with this file instead, given a plan (a JSON list of ``{"spec": <path>, "refresh": [<dataset>, ...]}``),
so the steps of an update (see ``DEDUP_DEFINITIONS`` there) share one JVM rather than starting one each.
Each step is pyspark's own ``run`` (a Spark Connect session, the graph, the run, its progress lines).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pyspark.pipelines import cli


def main(argv: list[str]) -> None:
    (plan,) = argv
    # How the launcher told pyspark to start a local Connect server; a step's session.stop() stops the server
    # and clears these, so each step gets them back and starts it again (in the same JVM).
    launch = {name: value for name, value in os.environ.items() if name.startswith("SPARK_")}
    for step in json.loads(Path(plan).read_text()):
        os.environ.update(launch)
        cli.run(spec_path=Path(step["spec"]), full_refresh=[], full_refresh_all=False, refresh=step["refresh"], dry=False)


if __name__ == "__main__":
    main(sys.argv[1:])

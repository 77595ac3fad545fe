"""The local runtime: Databricks' `cloudFiles` and `delta` on open-source Spark, and the tools around it.

delta-rs allocates through its own jemalloc. With jemalloc's default 10-second decay, the pages its
MERGEs free stay resident in a long-running driver, which then grows by tens of MiB per
micro-batch; with a 1-second decay its size stays flat (``python -m benchmarks.run --only state``).
Importing this package sets that decay before delta-rs is loaded, in this process and in the Spark
workers the session starts (they inherit the environment). A value already in
``_RJEM_MALLOC_CONF`` is kept.
"""

import os

JEMALLOC_CONF_VAR = "_RJEM_MALLOC_CONF"
JEMALLOC_CONF = "dirty_decay_ms:1000"

os.environ.setdefault(JEMALLOC_CONF_VAR, JEMALLOC_CONF)

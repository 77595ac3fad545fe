"""The medallion streams' micro-batches: what each notebook's ``foreachBatch`` does.

The notebooks show each stream's wiring (``readStream``, transforms, watermark, ``writeStream``);
this package holds what happens inside a micro-batch, one module per layer:

* :mod:`~lakehouse.pipeline.layers`: creating the tables (00_setup) and preparing a layer's stream
  (reset, checks);
* :mod:`~lakehouse.pipeline.bronze`: landed lines appended to ``bronze.events``;
* :mod:`~lakehouse.pipeline.silver`: quarantine, dedup against Silver, append of new events;
* :mod:`~lakehouse.pipeline.gold`: the Gold tables recomputed for the days a batch touched;
* :mod:`~lakehouse.pipeline.gold_model`: the star schema, sessions, users' history and customer features;
* :mod:`~lakehouse.pipeline.metrics`: the ``ops.pipeline_metrics`` row every micro-batch writes.

All writes are idempotent per (stream, batch id), so a batch replayed after a crash changes nothing twice.
"""

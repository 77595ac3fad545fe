"""The declarative edition: the same pipeline as Lakeflow Spark Declarative Pipelines datasets.

The definitions in ``databricks/pipelines/clickstream/`` declare each dataset with ``pyspark.pipelines``
(``@dp.table``, ``@dp.materialized_view``) and say how it reads (Auto Loader, a watermark, dedup); what each
dataset holds comes from here, built on the transforms the notebooks share (:mod:`lakehouse.transforms`):

- :mod:`~lakehouse.declarative.settings`: the pipeline configuration the definitions read (``clickstream.*``).
- :mod:`~lakehouse.declarative.datasets`: every dataset's name, columns and comments.
- :mod:`~lakehouse.declarative.expectations`: the contract's checks as expectations.
- :mod:`~lakehouse.declarative.flows`: ``DataFrame -> DataFrame`` for each dataset.
- :mod:`~lakehouse.declarative.reconcile`: the conservation law over the declarative edition's tables.
"""

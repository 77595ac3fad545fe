"""The ``cloudFiles`` data source class: validates options on ``.load()`` and hands out the readers."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

from pyspark.sql.datasource import DataSource
from pyspark.sql.types import StructType

from lakehouse_local import storage
from lakehouse_local.sources.cloudfiles.layout import BINARY_FILE_SCHEMA, METADATA_TYPE, TEXT_SCHEMA, OutputLayout
from lakehouse_local.sources.cloudfiles.options import BINARY_FILE, CloudFilesOptions
from lakehouse_local.sources.cloudfiles.readers import CloudFilesBatchReader, CloudFilesStreamReader

SOURCE_NAME = "cloudFiles"
# Where a stream keeps its discovery log when its code names no cloudFiles.schemaLocation. Auto Loader keeps
# that state in the stream's checkpoint, which a Python data source cannot see; a declarative pipeline's code
# names none (Lakeflow manages Auto Loader's state), so its local runner sets this for the pipeline.
STATE_ROOT_ENV = "CLOUDFILES_STATE_ROOT"


class CloudFilesDataSource(DataSource):
    """Registered as ``cloudFiles``; options are validated as soon as ``.load()`` is called."""

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        self.cloud_files = CloudFilesOptions.from_options(options)

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> StructType:
        if self.cloud_files.file_format == "text":
            return TEXT_SCHEMA
        if self.cloud_files.file_format == BINARY_FILE:
            return BINARY_FILE_SCHEMA
        raise ValueError(
            "cloudFiles source: cloudFiles.format 'json' needs a schema (schema inference is not implemented "
            "locally). Pass one with .schema(...); add `_rescued_data STRING` and "
            f"`_metadata {METADATA_TYPE.simpleString()}` to it to get those columns."
        )

    def reader(self, schema: StructType) -> CloudFilesBatchReader:
        return CloudFilesBatchReader(self.cloud_files, OutputLayout.for_schema(schema, self.cloud_files))

    def streamReader(self, schema: StructType) -> CloudFilesStreamReader:
        options = self.cloud_files
        if options.schema_location is None:
            options = dataclasses.replace(options, schema_location=default_schema_location(options))
        return CloudFilesStreamReader(options, OutputLayout.for_schema(schema, options))


def default_schema_location(options: CloudFilesOptions) -> str:
    """``$CLOUDFILES_STATE_ROOT/<digest of what the stream reads>``, for a stream that names no schemaLocation.

    The digest covers the path, the format and the file-name filter, not the read limits, so a stream keeps
    its log when its batch sizes change. Two streams reading the same files at once would share it, and the
    second is refused (the log has one writer): such streams must name their own schemaLocation.
    """
    root = os.environ.get(STATE_ROOT_ENV)
    if not root:
        raise ValueError(
            "cloudFiles source: streams need option 'cloudFiles.schemaLocation' (a folder this stream owns; it "
            "keeps the discovery log that makes file discovery exactly-once across restarts), or "
            f"${STATE_ROOT_ENV} naming a folder where streams that name none keep it."
        )
    identity = json.dumps([options.path, options.file_format, options.path_glob_filter])
    return storage.join(storage.normalize(root), hashlib.sha256(identity.encode()).hexdigest()[:16])

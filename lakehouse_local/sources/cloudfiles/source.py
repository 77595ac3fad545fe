"""The ``cloudFiles`` data source class: validates options on ``.load()`` and hands out the readers."""

from __future__ import annotations

from pyspark.sql.datasource import DataSource
from pyspark.sql.types import StructType

from lakehouse_local.sources.cloudfiles.layout import BINARY_FILE_SCHEMA, METADATA_TYPE, TEXT_SCHEMA, OutputLayout
from lakehouse_local.sources.cloudfiles.options import BINARY_FILE, CloudFilesOptions
from lakehouse_local.sources.cloudfiles.readers import CloudFilesBatchReader, CloudFilesStreamReader

SOURCE_NAME = "cloudFiles"


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
        if self.cloud_files.schema_location is None:
            raise ValueError(
                "cloudFiles source: streams need option 'cloudFiles.schemaLocation' (a folder this stream owns; "
                "it keeps the discovery log that makes file discovery exactly-once across restarts)."
            )
        return CloudFilesStreamReader(self.cloud_files, OutputLayout.for_schema(schema, self.cloud_files))

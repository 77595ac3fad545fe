"""The options of a ``cloudFiles`` read: which are accepted, and their validated values.

Names are case-insensitive, as everywhere in Spark:

``cloudFiles.format``               ``json`` (JSON lines), ``text`` or ``binaryFile`` (a row per file:
                                    ``path``, ``modificationTime``, ``length``, ``content``); required.
``cloudFiles.schemaLocation``       required for streams; holds the discovery log (``_discovery/``).
``cloudFiles.maxFilesPerTrigger``   files admitted per micro-batch (default 1000), also under
                                    ``trigger(availableNow=True)``.
``cloudFiles.maxBytesPerTrigger``   soft byte cap per micro-batch (``"10m"``, ``"1g"``, bytes); a batch
                                    always takes at least one file. With both caps, the first reached wins.
``cloudFiles.includeExistingFiles`` ``true`` (default) or ``false``: skip files present when a new
                                    checkpoint starts.
``cloudFiles.schemaEvolutionMode``  ``rescue`` or ``none`` (the schema never evolves here).
``cloudFiles.useIncrementalListing`` ``auto`` (default), ``true`` or ``false``: list only the keys after
                                    the last one seen, or everything (see
                                    :mod:`~lakehouse_local.sources.cloudfiles.listing`).
``cloudFiles.backfillInterval``     an interval (``"1 hour"``, ``"1 day"``, ``"1 week"``): list everything
                                    this often, to find keys that sort before the last one seen.
                                    Default: none (``auto`` then backfills every hour).
``cloudFiles.maxFileAge``           an interval, default none (as Auto Loader): how long a discovered
                                    path is remembered, and the age past which a newly listed file is
                                    ignored, counted back from the newest file discovered (see
                                    :mod:`~lakehouse_local.sources.cloudfiles.discovery`).
``cloudFiles.validateOptions``      accepted; options are always validated.
``path``, ``pathGlobFilter`` (file-name glob), ``rescuedDataColumn``, ``columnNameOfCorruptRecord``,
``recursiveFileLookup`` (listing is always recursive, as Auto Loader's is: only ``true`` is accepted).
``ignoreMissingFiles``              ``false`` (default): a file gone between discovery and reading fails
                                    the read, naming it; ``true``: ``binaryFile`` hands it over with a null
                                    ``content`` (Auto Loader skips it), the other formats skip it.

Anything else raises ``ValueError`` naming the option (see :mod:`lakehouse_local.sources.options`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from lakehouse_local import storage
from lakehouse_local.sources.options import SourceOptions

SUPPORTED_FORMATS = ("json", "text", "binaryfile")
BINARY_FILE = "binaryfile"
DEFAULT_RESCUED_DATA_COLUMN = "_rescued_data"
DEFAULT_CORRUPT_RECORD_COLUMN = "_corrupt_record"
SCHEMA_EVOLUTION_MODES = ("rescue", "none")
INCREMENTAL_LISTING_MODES = ("auto", "true", "false")

# Every accepted option, as users spell it.
CLOUD_FILES_OPTIONS = (
    "cloudFiles.format",
    "cloudFiles.schemaLocation",
    "cloudFiles.maxFilesPerTrigger",
    "cloudFiles.maxBytesPerTrigger",
    "cloudFiles.includeExistingFiles",
    "cloudFiles.schemaEvolutionMode",
    "cloudFiles.useIncrementalListing",
    "cloudFiles.backfillInterval",
    "cloudFiles.maxFileAge",
    "cloudFiles.validateOptions",
)
GENERIC_OPTIONS = (
    "path", "pathGlobFilter", "rescuedDataColumn", "columnNameOfCorruptRecord", "recursiveFileLookup",
    "ignoreMissingFiles",
)


@dataclasses.dataclass(frozen=True)
class CloudFilesOptions:
    """Validated options of one ``cloudFiles`` read."""

    path: str
    file_format: str
    schema_location: str | None = None
    max_files_per_trigger: int | None = None
    max_bytes_per_trigger: int | None = None
    include_existing_files: bool = True
    ignore_missing_files: bool = False
    path_glob_filter: str | None = None
    rescued_data_column: str = DEFAULT_RESCUED_DATA_COLUMN
    rescued_data_column_requested: bool = False
    corrupt_record_column: str = DEFAULT_CORRUPT_RECORD_COLUMN
    use_incremental_listing: str = "auto"
    backfill_interval_ms: int | None = None
    max_file_age_ms: int | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> CloudFilesOptions:
        opts = SourceOptions(options, context="cloudFiles source")
        opts.check(
            [*CLOUD_FILES_OPTIONS, *GENERIC_OPTIONS],
            source="cloudFiles",
            remedy=f"Remove the option or implement it in {__package__}.",
        )

        file_format = opts.get("cloudFiles.format")
        if not file_format:
            raise ValueError("cloudFiles source: option 'cloudFiles.format' is required (one of: json, text, binaryFile).")
        file_format = file_format.strip().lower()
        if file_format not in SUPPORTED_FORMATS:
            raise ValueError(
                f"cloudFiles source: cloudFiles.format '{file_format}' is not supported locally; "
                f"supported formats: {', '.join(SUPPORTED_FORMATS)}."
            )

        path = opts.get("path")
        if not path:
            raise ValueError(
                "cloudFiles source: no input path; call .load('s3://bucket/prefix') or .load('/local/folder')."
            )
        if any(char in path for char in "*?[{"):
            raise ValueError(
                f"cloudFiles source: glob patterns in the path ({path!r}) are not supported; load the folder "
                "and use the 'pathGlobFilter' option for file names."
            )

        mode = opts.get("cloudFiles.schemaEvolutionMode")
        if mode is not None:
            mode = mode.strip().lower()
            if mode not in SCHEMA_EVOLUTION_MODES:
                raise ValueError(
                    f"cloudFiles source: cloudFiles.schemaEvolutionMode '{mode}' is not supported locally "
                    f"(the schema never evolves here); use one of: {', '.join(SCHEMA_EVOLUTION_MODES)}."
                )
        opts.flag("cloudFiles.validateOptions", True)
        if not opts.flag("recursiveFileLookup", True):
            raise ValueError(
                "cloudFiles source: recursiveFileLookup 'false' is not supported: listing is always recursive, "
                "as Auto Loader's is. Point the path at the folder to read, or filter names with pathGlobFilter."
            )
        incremental = (opts.get("cloudFiles.useIncrementalListing") or "auto").strip().lower()
        if incremental not in INCREMENTAL_LISTING_MODES:
            raise ValueError(
                f"cloudFiles source: cloudFiles.useIncrementalListing must be one of "
                f"{', '.join(INCREMENTAL_LISTING_MODES)}, got {opts.get('cloudFiles.useIncrementalListing')!r}."
            )
        backfill = opts.get("cloudFiles.backfillInterval")
        max_age = opts.get("cloudFiles.maxFileAge")

        max_files = opts.integer("cloudFiles.maxFilesPerTrigger", positive=True)
        schema_location = opts.get("cloudFiles.schemaLocation")
        rescued = opts.get("rescuedDataColumn")
        return cls(
            path=storage.normalize(path),
            file_format=file_format,
            schema_location=storage.normalize(schema_location) if schema_location else None,
            max_files_per_trigger=max_files,
            max_bytes_per_trigger=opts.byte_size("cloudFiles.maxBytesPerTrigger"),
            include_existing_files=opts.flag("cloudFiles.includeExistingFiles", True),
            ignore_missing_files=opts.flag("ignoreMissingFiles", False),
            path_glob_filter=opts.get("pathGlobFilter") or None,
            rescued_data_column=rescued or DEFAULT_RESCUED_DATA_COLUMN,
            rescued_data_column_requested=bool(rescued) or mode == "rescue",
            corrupt_record_column=opts.get("columnNameOfCorruptRecord") or DEFAULT_CORRUPT_RECORD_COLUMN,
            use_incremental_listing=incremental,
            backfill_interval_ms=parse_interval(backfill, "cloudFiles.backfillInterval") if backfill else None,
            max_file_age_ms=parse_interval(max_age, "cloudFiles.maxFileAge") if max_age else None,
        )


_INTERVAL_UNITS_MS = {"second": 1000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000, "week": 604_800_000}
_INTERVAL_TERM = re.compile(r"(\d+)\s*(second|minute|hour|day|week)s?", re.IGNORECASE)


def parse_interval(value: str, option: str) -> int:
    """``"1 day"`` → 86400000 (milliseconds). Terms add up (``"1 day 12 hours"``); ``interval`` may lead.

    Months and years are refused: their length varies, and an age or a backfill period needs one.
    """
    text = value.strip()
    if text.lower().startswith("interval"):
        text = text[len("interval") :]
    terms = _INTERVAL_TERM.findall(text)
    total = sum(int(count) * _INTERVAL_UNITS_MS[unit.lower()] for count, unit in terms)
    if not terms or _INTERVAL_TERM.sub("", text).strip() or total <= 0:
        raise ValueError(
            f"cloudFiles source: {option} must be a positive interval such as '30 minutes', '1 day' or '1 week' "
            f"(units: {', '.join(_INTERVAL_UNITS_MS)}), got {value!r}."
        )
    return total

"""Option checking shared by the local data sources (``cloudFiles`` and ``delta``).

Spark hands a Python data source its options with lower-cased names, so names are compared
case-insensitively here and errors spell them as users write them. An option a source does not
implement is refused with an error naming it and listing the accepted ones: an option silently
ignored here would make a local run disagree with Databricks without anyone noticing. Values are
parsed with errors that name the option.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_BYTE_SIZE = re.compile(r"^\s*(\d+)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_byte_size(value: str, option: str = "size", *, context: str = "option", error: type[ValueError] = ValueError) -> int:
    """``"10m"`` → 10485760. Units are powers of 1024, as in Spark's byte strings; no unit means bytes."""
    match = _BYTE_SIZE.match(str(value))
    if not match or int(match.group(1)) <= 0:
        raise error(f"{context}: {option} must be a positive byte size such as '10m' or '1g', got {value!r}.")
    return int(match.group(1)) * 1024 ** "_kmgtp".index(match.group(2).lower() or "_")


class SourceOptions:
    """The options of one read or write: case-insensitive lookup, typed values, errors naming the option.

    Every error message starts with ``context`` (``"cloudFiles source"``, ``"delta stream from
    /t"``, ...) and is raised as ``error``, a ``ValueError`` subclass of the source's own.
    """

    def __init__(self, options: Mapping[str, str], *, context: str, error: type[ValueError] = ValueError) -> None:
        self._values = {str(key).lower(): value for key, value in options.items()}
        self.context = context
        self.error = error

    def check(
        self,
        accepted: Iterable[str],
        *,
        source: str,
        remedy: str,
        unlisted: Iterable[str] = (),
        spellings: Iterable[str] = (),
    ) -> None:
        """Refuse every option outside ``accepted`` (listed in the error) and ``unlisted`` (accepted, not listed).

        ``spellings`` are other option names the source knows of, so the error spells them as users do.
        """
        accepted = list(accepted)
        allowed = {name.lower() for name in [*accepted, *unlisted]}
        unknown = sorted(key for key in self._values if key not in allowed)
        if unknown:
            spelled = {name.lower(): name for name in [*spellings, *accepted]}
            named = ", ".join(spelled.get(key, key) for key in unknown)
            if any(key not in spelled for key in unknown):
                named += " (Spark passes option names lower-cased)"
            raise self.error(
                f"{self.context}: option(s) {named} not supported by the local {source} source "
                f"(supported: {', '.join(accepted)}). {remedy}"
            )

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)

    def flag(self, name: str, default: bool = False) -> bool:
        """A ``true``/``false`` option (any case); ``default`` when it is not set."""
        value = self.get(name)
        if value is None:
            return default
        lowered = str(value).strip().lower()
        if lowered not in ("true", "false"):
            raise self.error(f"{self.context}: option {name} must be true or false, got {value!r}.")
        return lowered == "true"

    def integer(self, name: str, default: int | None = None, *, positive: bool = False) -> int | None:
        """An integer option; ``default`` when it is not set. ``positive`` refuses zero and negatives."""
        value = self.get(name)
        if value is None:
            return default
        try:
            number = int(str(value).strip())
        except ValueError:
            number = None
        if number is None or (positive and number <= 0):
            kind = "a positive integer" if positive else "an integer"
            raise self.error(f"{self.context}: option {name} must be {kind}, got {value!r}.")
        return number

    def byte_size(self, name: str, default: int | None = None) -> int | None:
        """A positive byte size (``"64m"``, ``"1g"``, a number of bytes); ``default`` when it is not set."""
        value = self.get(name)
        if value is None:
            return default
        return parse_byte_size(value, f"option {name}", context=self.context, error=self.error)

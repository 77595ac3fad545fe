"""Pseudonymisation: the keyed hash of identifiers, and IP addresses replaced by it wherever text is kept.

A plain SHA-256 of an IPv4 address can be reversed by hashing all 2^32 addresses, so identifiers are
hashed with HMAC-SHA-256 under a secret key (``CLICKSTREAM_HMAC_KEY``; on Databricks from a secret
scope). The producer hashes the client IP into ``ip_hash`` with the same key, so a hashed address
found in free text equals the ``ip_hash`` of that address.

What counts as an IP address in text (:func:`ip_addresses`): an IPv4 literal (four decimal octets,
0-255) or an IPv6 literal (as :mod:`ipaddress` reads it, at least two colons), standing alone (not
inside a longer run of letters, digits, dots or colons). Not counted: ``N.0.0.0``, which is what
browsers put in user agents as a version (``Chrome/124.0.0.0``), and the unspecified ``0.0.0.0`` and
``::``; none of them names a host.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
from collections.abc import Iterator
from hashlib import sha256

HMAC_KEY_ENV = "CLICKSTREAM_HMAC_KEY"
# Demo-only key so local runs work out of the box; production sets CLICKSTREAM_HMAC_KEY from a secret.
DEFAULT_HMAC_KEY = "clickstream-demo-hmac-key"

# Candidates only; ipaddress decides. The look-arounds keep a candidate from being part of a longer token.
_CANDIDATE = re.compile(
    r"(?<![0-9A-Za-z.:])"
    r"(?:(?:\d{1,3}\.){3}\d{1,3}"  # IPv4
    r"|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?)"  # IPv6 (maybe IPv4-mapped)
    r"(?![0-9A-Za-z.:])"
)
_VERSION_LIKE = re.compile(r"\d{1,3}\.0\.0\.0")
# Cheap test first: most text holds neither four dotted numbers nor two colons close together.
_HINT = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d|:[0-9A-Fa-f]{0,4}:")


def hmac_key() -> bytes:
    """The key for every keyed hash: ``CLICKSTREAM_HMAC_KEY``, or the documented demo default."""
    return os.environ.get(HMAC_KEY_ENV, DEFAULT_HMAC_KEY).encode()


def keyed_hash(value: str, key: bytes) -> str:
    """HMAC-SHA-256 of ``value`` as 64 lower-case hex digits (the contract's ``ip_hash`` shape)."""
    return hmac.new(key, value.encode(), sha256).hexdigest()


def _is_address(text: str) -> bool:
    if _VERSION_LIKE.fullmatch(text):
        return False
    try:
        return not ipaddress.ip_address(text).is_unspecified  # 0.0.0.0 and :: name no host
    except ValueError:
        return False


def ip_addresses(text: str) -> Iterator[str]:
    """The IP addresses in ``text`` (see the module docstring for the rule)."""
    if not _HINT.search(text):
        return
    for match in _CANDIDATE.finditer(text):
        if _is_address(match.group()):
            yield match.group()


def scrub(text: str, key: bytes) -> str:
    """``text`` with every IP address replaced by its keyed hash."""
    if not _HINT.search(text):
        return text
    return _CANDIDATE.sub(lambda m: keyed_hash(m.group(), key) if _is_address(m.group()) else m.group(), text)

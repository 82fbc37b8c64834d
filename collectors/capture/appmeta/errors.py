"""The one exception the payload parsers raise."""
from __future__ import annotations


class AppParseError(ValueError):
    """The payload looks like this protocol but is malformed.

    Parsers return None when a payload is simply not their protocol; this error means
    "it is, but broken", which the caller counts as a malformed payload.
    """

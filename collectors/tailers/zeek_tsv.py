"""Zeek's ASCII (TSV) log format: the `#` header block and typed rows.

A header block starts with `#separator` (its value written with \\xHH escapes) and sets
`#set_separator`, `#empty_field`, `#unset_field`, `#path`, `#fields` and `#types`; a file may
hold several blocks (logs appended after a restart or rotation). Values are unescaped
(\\xHH), the unset marker becomes None, the empty marker an empty string or list, and each
value is converted by its Zeek type. Anything that does not fit raises ZeekFormatError.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")
_FLOATS = {"time", "interval", "double"}
_INTS = {"count", "int", "port", "counter"}


class ZeekFormatError(ValueError):
    """A line does not follow the header in force; the message names the field."""


@dataclass
class ZeekHeader:
    separator: str = "\t"
    set_separator: str = ","
    empty_field: str = "(empty)"
    unset_field: str = "-"
    path: str | None = None
    fields: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ZeekHeader:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def unescape(value: str) -> str:
    """Zeek writes separators and non-printable bytes as \\xHH; the bytes may form UTF-8."""
    if "\\x" not in value:
        return value
    raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode("utf-8"))
    return raw.decode("utf-8", "backslashreplace")


def apply_header(header: ZeekHeader, line: str) -> ZeekHeader:
    """The header in force after a `#` line. `#separator` opens a new block."""
    if line.startswith("#separator"):
        value = unescape(line[len("#separator"):].lstrip(" "))
        return ZeekHeader(separator=value or "\t")
    name, _, value = line[1:].partition(header.separator)
    if name == "fields":
        return replace(header, fields=value.split(header.separator))
    if name == "types":
        return replace(header, types=value.split(header.separator))
    if name in ("set_separator", "empty_field", "unset_field"):
        return replace(header, **{name: unescape(value)})
    if name == "path":
        return replace(header, path=value)
    return header   # #open, #close, comments (e.g. btest's "### ...")


def parse_row(header: ZeekHeader, line: str) -> dict[str, Any]:
    """One data line -> {field name: typed value}."""
    if not header.fields:
        raise ZeekFormatError("no #fields header before this data line (zeek-cut or "
                              "tsv-mode output carries no types and is not supported)")
    values = line.split(header.separator)
    if len(values) != len(header.fields):
        raise ZeekFormatError(f"expected {len(header.fields)} fields, got {len(values)}")
    types = header.types if len(header.types) == len(header.fields) else ()
    row = {}
    for i, (name, raw) in enumerate(zip(header.fields, values)):
        try:
            row[name] = _value(header, raw, types[i] if types else "string")
        except ValueError as exc:
            raise ZeekFormatError(f"field {name}: {exc}") from None
    return row


def _value(header: ZeekHeader, raw: str, type_: str) -> Any:
    if raw == header.unset_field:
        return None
    container = type_.startswith(("set[", "vector[", "table["))
    if raw == header.empty_field:
        return [] if container else ""
    if container:
        inner = type_[type_.index("[") + 1:-1]
        return [convert(unescape(item), inner) for item in raw.split(header.set_separator)]
    return convert(unescape(raw), type_)


def convert(value: str, type_: str) -> Any:
    """A single Zeek value by its type; addresses, enums and strings stay strings."""
    if type_ in _FLOATS:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite {type_}")
        return number
    if type_ in _INTS:
        return int(value)
    if type_ == "bool":
        if value not in ("T", "F"):
            raise ValueError(f"{value!r} is not a bool (T/F)")
        return value == "T"
    return value

"""Neutral column types: what a value *is*, whichever database declared it.

Every connector maps its database's declarations onto these and back, and everything
between a source and a sink — the Avro schema of a table's rows, the HDFS and Kafka
formats — is derived from them, never from one database's type names. A column keeps its
source's own declaration next to its neutral type (:class:`schemas.table.Column`), so a sink
of the same family can still recreate it exactly (``int(10) unsigned zerofill``).

Inside Sluice each kind has one value form, what the Avro codec carries:

==============  ================================================================
kind            Python value
==============  ================================================================
int             ``int`` within ``bits`` (``signed`` or not)
decimal         ``Decimal`` with at most ``precision`` digits, ``scale`` after the point
numeric         ``Decimal`` of any size (PostgreSQL ``numeric`` without a scale)
float32/64      ``float``
boolean         ``bool``
string          ``str`` (``length``: the declared maximum in characters, if any)
bytes           ``bytes`` (``length``: the declared maximum, if any)
date            ``datetime.date``, or ``str`` for a date no calendar holds
                (MySQL ``'0000-00-00'``, PostgreSQL ``'infinity'``)
time            ``datetime.timedelta`` (MySQL TIME spans -838:59:59 .. 838:59:59)
timestamp       naive ``datetime`` as the source shows it, or ``str`` as for date
timestamp_tz    naive ``datetime`` in UTC (an instant), or ``str`` as for date
interval        ``str``: the source's text of the interval
uuid            ``str``: the canonical text
json            ``str``: the document's text
enum            ``str``: one of ``symbols``
set             ``str``: members of ``symbols``, comma-separated, in declared order
bit             ``bytes``: ``bits`` bits, big-endian, left-padded to whole bytes
array           ``list`` of ``element`` values (``None`` for a null element)
opaque          ``str``: the source's text of a type with no neutral equal (``inet``)
unsupported     none: a column Sluice cannot carry exactly (MySQL GEOMETRY); a job that
                reads it is refused, naming the column
==============  ================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.errors import SchemaError

INT = "int"
DECIMAL = "decimal"
NUMERIC = "numeric"
FLOAT32 = "float32"
FLOAT64 = "float64"
BOOLEAN = "boolean"
STRING = "string"
BYTES = "bytes"
DATE = "date"
TIME = "time"
TIMESTAMP = "timestamp"
TIMESTAMP_TZ = "timestamp_tz"
INTERVAL = "interval"
UUID = "uuid"
JSON = "json"
ENUM = "enum"
SET = "set"
BIT = "bit"
ARRAY = "array"
OPAQUE = "opaque"
UNSUPPORTED = "unsupported"

KINDS = frozenset(
    {INT, DECIMAL, NUMERIC, FLOAT32, FLOAT64, BOOLEAN, STRING, BYTES, DATE, TIME}
    | {TIMESTAMP, TIMESTAMP_TZ, INTERVAL, UUID, JSON, ENUM, SET, BIT, ARRAY, OPAQUE}
    | {UNSUPPORTED}
)
TEMPORAL = frozenset({DATE, TIME, TIMESTAMP, TIMESTAMP_TZ})
"""Kinds with a fractional-seconds precision (``fsp``) or calendar dates."""


@dataclass(frozen=True)
class LogicalType:
    """One neutral type. Only the parameters of its kind are set; the rest stay ``None``."""

    kind: str
    bits: int | None = None
    """int: 8, 16, 24, 32 or 64; bit: the declared width."""
    signed: bool | None = None
    """int only."""
    precision: int | None = None
    """decimal: total digits."""
    scale: int | None = None
    """decimal: digits after the point."""
    length: int | None = None
    """string (characters) and bytes: the declared maximum; ``None`` when unbounded."""
    fsp: int | None = None
    """time, timestamp, timestamp_tz: fractional-second digits (0-6)."""
    symbols: tuple[str, ...] | None = None
    """enum and set: the declared members, in order."""
    element: LogicalType | None = None
    """array: the type of its elements."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SchemaError(f"no neutral type {self.kind!r}; known: {', '.join(sorted(KINDS))}")
        if self.kind == INT and (self.bits not in (8, 16, 24, 32, 64) or self.signed is None):
            raise SchemaError(f"int needs bits 8/16/24/32/64 and a sign, got {self!r}")
        if self.kind == DECIMAL and (self.precision is None or self.scale is None):
            raise SchemaError(f"decimal needs precision and scale, got {self!r}")
        if self.kind == ARRAY and self.element is None:
            raise SchemaError("array needs an element type")
        if self.kind in (ENUM, SET) and self.symbols is None:
            raise SchemaError(f"{self.kind} needs its symbols")

    # --- integer ranges, for sinks that check or widen ----------------------------------

    @property
    def int_range(self) -> tuple[int, int]:
        """(min, max) of an int."""
        assert self.kind == INT and self.bits is not None
        if self.signed:
            return -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1
        return 0, 2**self.bits - 1

    # --- text forms -----------------------------------------------------------------------

    def describe(self) -> str:
        """A short text for messages and listings: ``int64``, ``uint32``, ``decimal(10,2)``."""
        k = self.kind
        if k == INT:
            return f"{'' if self.signed else 'u'}int{self.bits}"
        if k == DECIMAL:
            return f"decimal({self.precision},{self.scale})"
        if k in (STRING, BYTES):
            return f"{k}({self.length})" if self.length is not None else k
        if k in (TIME, TIMESTAMP, TIMESTAMP_TZ):
            return f"{k}({self.fsp})" if self.fsp else k
        if k == BIT:
            return f"bit({self.bits})"
        if k in (ENUM, SET):
            return f"{k}({len(self.symbols or ())} members)"
        if k == ARRAY:
            assert self.element is not None
            return f"array<{self.element.describe()}>"
        return k

    def to_json(self) -> dict[str, Any]:
        """The set parameters only: ``{"kind": "int", "bits": 32, "signed": true}``."""
        out: dict[str, Any] = {"kind": self.kind}
        for name in ("bits", "signed", "precision", "scale", "length", "fsp"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.symbols is not None:
            out["symbols"] = list(self.symbols)
        if self.element is not None:
            out["element"] = self.element.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogicalType:
        args = dict(data)
        if "symbols" in args:
            args["symbols"] = tuple(args["symbols"])
        if "element" in args:
            args["element"] = cls.from_json(args["element"])
        try:
            return cls(**args)
        except TypeError as e:
            raise SchemaError(f"not a neutral type: {data!r} ({e})") from None


def int_type(bits: int, signed: bool = True) -> LogicalType:
    return LogicalType(INT, bits=bits, signed=signed)


def decimal_type(precision: int, scale: int) -> LogicalType:
    return LogicalType(DECIMAL, precision=precision, scale=scale)


def simple(kind: str) -> LogicalType:
    """A kind without parameters (float64, boolean, date, json, uuid, ...)."""
    return LogicalType(kind)

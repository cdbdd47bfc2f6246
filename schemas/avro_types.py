"""MySQL column types as Avro types, and the per-table codec between rows and Avro records.

Inside Sluice a row is a tuple of what PyMySQL returns (text protocol, default conversions)
and accepts as query parameters. The contract here is an exact round trip: a value PyMySQL
read from a column, encoded, decoded and written back by PyMySQL into a column of the same
type stores the identical value. Zero and partial dates, which PyMySQL hands over as ``str``,
travel in a ``string`` branch next to the logical date/timestamp branch.

Every Avro field carries the column's MySQL declaration in the ``sluice.column`` prop, so the
:class:`~schemas.table.TableSchema` can be rebuilt from a writer schema alone
(:func:`table_from_avro`); a consumer needs nothing but the schema registry.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any

from schemas import types as t
from schemas.control import load_avsc
from schemas.errors import SchemaError, SerdeError, UnsupportedColumnType
from schemas.table import Column, TableSchema
from schemas.types import LogicalType

AvroType = str | dict[str, Any] | list[Any]
Converter = Callable[[Any], Any]

COLUMN_PROP = "sluice.column"
"""Field prop: the column's ``information_schema`` description (see :func:`column_prop`)."""
SYMBOLS_PROP = "sluice.symbols"
"""Field prop of ENUM/SET columns: the declared members, in order."""
ROW_KIND = "row-envelope"
"""Value of the record-level ``sluice.kind`` prop of every row envelope schema."""

_PRIMITIVE_NAMES = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
    | {"record", "enum", "array", "map", "fixed"}
)
_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9_]")
_ONE_MICROSECOND = timedelta(microseconds=1)
_FLOAT32 = struct.Struct("<f")


# --- value converters: chosen once per column, run per value (never for None) ------------


def _date_to_avro(value: Any) -> Any:
    # PyMySQL returns '0000-00-00' / '2020-00-00' as str. fastavro's union resolution would
    # try to parse such a str as an ISO date, so its branch is named (fastavro tuple notation).
    return ("string", value) if isinstance(value, str) else value


def _time_to_avro(value: timedelta) -> int:
    return value // _ONE_MICROSECOND


def _time_from_avro(micros: int) -> timedelta:
    return timedelta(microseconds=micros)


def shortest_float32(value: float) -> float:
    """The shortest decimal that is the same float32: what MySQL prints for a FLOAT column.

    Avro ``float`` is 32 bits; widening it to a Python float gives e.g. 3.1415901184082031
    for the 3.14159 PyMySQL read. Both store the same FLOAT, but the short form is the value
    a reader saw, so text sinks (HDFS, Kafka JSON) show the same digits.
    """
    pack, unpack = _FLOAT32.pack, _FLOAT32.unpack
    for digits in (6, 7, 8, 9):
        short = float(f"{value:.{digits}g}")
        if unpack(pack(short))[0] == value:
            return short
    return value


# --- names ---------------------------------------------------------------------------------


def avro_name(name: str, *, type_name: bool = False) -> str:
    """A valid Avro name for a MySQL identifier (MySQL allows ``my-col``, spaces, unicode).

    Valid names are kept. Others become their ASCII letters/digits plus a short hash of the
    real name, so ``a-b`` and ``a b`` cannot collide and the mapping needs no context: the
    same column gets the same field name in every schema version. ``type_name`` also rejects
    Avro's primitive type names, which a record may not be called.
    """
    if _AVRO_NAME.match(name) and not (type_name and name in _PRIMITIVE_NAMES):
        return name
    base = _NOT_NAME_CHAR.sub("_", name)
    if not base or base[0].isdigit():
        base = "_" + base
    return f"{base}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def field_names(table: TableSchema) -> tuple[str, ...]:
    """The Avro field name of each column, in column order."""
    names = tuple(avro_name(c.name) for c in table.columns)
    if len(set(names)) != len(names):
        raise SchemaError(
            f"table {table.qualified_name}: columns {names} give duplicate Avro names"
        )
    return names


# --- the type mapping ----------------------------------------------------------------------


def _unsupported(col: Column, table: str | None) -> UnsupportedColumnType:
    where = f"{table}.{col.name}" if table else col.name
    return UnsupportedColumnType(
        f"column {where} has type {col.column_type!r} (data_type {col.data_type!r}), which "
        "Sluice cannot carry exactly; exclude the column from the job or cast it in a view"
    )


_UNSIGNED_LONG = {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 0}
_TEXT_KINDS = frozenset({t.STRING, t.JSON, t.UUID, t.ENUM, t.SET, t.INTERVAL, t.OPAQUE})


def _mapping(col: Column, table: str | None) -> tuple[AvroType, Converter | None, Converter | None]:
    """(non-null Avro type, to-Avro converter, from-Avro converter) of one column."""
    try:
        return type_mapping(col.logical)
    except UnsupportedColumnType:
        raise _unsupported(col, table) from None


def type_mapping(lt: LogicalType) -> tuple[AvroType, Converter | None, Converter | None]:
    """The same for a neutral type: derived from it alone, whichever source declared it."""
    kind = lt.kind
    if kind == t.INT:
        low, high = lt.int_range
        if low >= -(2**31) and high < 2**31:
            return "int", None, None
        if low >= -(2**63) and high < 2**63:
            return "long", None, None
        return _UNSIGNED_LONG, Decimal, int  # up to 2**64-1: beyond Avro long
    if kind == t.DECIMAL:
        decimal = {
            "type": "bytes",
            "logicalType": "decimal",
            "precision": lt.precision,
            "scale": lt.scale,
        }
        return decimal, None, None
    if kind == t.NUMERIC:  # no precision to declare: the exact decimal text
        return "string", str, Decimal
    if kind == t.FLOAT32:
        return "float", None, shortest_float32
    if kind == t.FLOAT64:
        return "double", None, None
    if kind == t.BOOLEAN:
        return "boolean", None, None
    if kind in _TEXT_KINDS:
        return "string", None, None
    if kind in (t.BYTES, t.BIT):
        return "bytes", None, None
    if kind == t.DATE:
        return [{"type": "int", "logicalType": "date"}, "string"], _date_to_avro, None
    if kind in (t.TIMESTAMP, t.TIMESTAMP_TZ):
        stamp = {"type": "long", "logicalType": "local-timestamp-micros"}
        return [stamp, "string"], None, None
    if kind == t.TIME:
        return "long", _time_to_avro, _time_from_avro
    if kind == t.ARRAY:
        assert lt.element is not None
        item, to_item, from_item = type_mapping(lt.element)
        items = ["null", *item] if isinstance(item, list) else ["null", item]
        return {"type": "array", "items": items}, _each(to_item), _each(from_item)
    raise UnsupportedColumnType(kind)


def _each(conv: Converter | None) -> Converter | None:
    if conv is None:
        return None
    return lambda values: [None if v is None else conv(v) for v in values]


def base_type(col: Column, table: str | None = None) -> AvroType:
    """The Avro type of a column's non-null values (a union only for DATE/DATETIME/TIMESTAMP).

    ``table`` (``db.table``) only improves the error raised for an unsupported type.
    """
    return _mapping(col, table)[0]


def field_type(col: Column, table: str | None = None) -> AvroType:
    """The Avro type of a column's field: a union with ``"null"`` first when nullable."""
    avro = base_type(col, table)
    if not col.nullable:
        return avro
    return ["null", *avro] if isinstance(avro, list) else ["null", avro]


def column_prop(col: Column) -> dict[str, Any]:
    """Everything :class:`Column` holds, for the ``sluice.column`` field prop."""
    return col.to_json()


def avro_field(col: Column, name: str, table: str | None = None) -> dict[str, Any]:
    """The Avro field of one column, with its props and docs."""
    field: dict[str, Any] = {"name": name, "type": field_type(col, table)}
    if col.nullable:
        field["default"] = None
    field[COLUMN_PROP] = column_prop(col)
    lt = col.logical
    field["sluice.type"] = lt.describe()
    if lt.kind in (t.ENUM, t.SET):
        field[SYMBOLS_PROP] = list(lt.symbols or ())
    doc = _FIELD_DOCS.get(lt.kind)
    if doc:
        field["doc"] = doc
    if lt.kind == t.TIMESTAMP_TZ:
        field["sluice.timezone"] = "UTC"
    elif lt.kind == t.TIME:
        field["sluice.unit"] = "microseconds"
    return field


_FIELD_DOCS = {
    t.SET: "SET members comma-separated, in declared order",
    t.TIMESTAMP_TZ: "an instant as naive UTC; dates no calendar holds in the string branch",
    t.TIMESTAMP: "naive timestamp as the source shows it; zero/partial dates in the string branch",
    t.DATE: "zero/partial dates ('0000-00-00') and infinities in the string branch",
    t.TIME: "signed microseconds (MySQL TIME: -838:59:59 .. 838:59:59)",
    t.NUMERIC: "an unbounded decimal as its exact text",
}


# --- per-table codec -----------------------------------------------------------------------


class RowCodec:
    """Converts one table's rows (tuples of PyMySQL values) to Avro records and back.

    Built once per table schema; the converters are picked per column here so that
    :meth:`to_avro` and :meth:`from_avro`, which run per row, only touch the columns that
    need converting. Records hold logical values (``date``, ``datetime``, ``Decimal``), the
    form fastavro writes and reads, except zero/partial DATE strings, which are given as
    ``("string", "0000-00-00")``: fastavro writes that from a top-level record or one whose
    enclosing union branch is named the same way (its validator cannot check it).
    """

    def __init__(self, table: TableSchema) -> None:
        self.table = table
        self.qualified_name = where = table.qualified_name
        self.value_record_name = f"{row_record_name(table)}.Value"
        self.field_names = field_names(table)
        to_avro: list[tuple[int, str, Converter]] = []
        from_avro: list[tuple[int, Converter]] = []
        for i, (col, name) in enumerate(zip(table.columns, self.field_names, strict=True)):
            _, to_conv, from_conv = _mapping(col, where)
            if to_conv is not None:
                to_avro.append((i, name, to_conv))
            if from_conv is not None:
                from_avro.append((i, from_conv))
        self._to = tuple(to_avro)
        self._from = tuple(from_avro)
        names = self.field_names
        self._take: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            itemgetter(*names) if len(names) > 1 else (lambda rec: (rec[names[0]],))
        )

    def to_avro(self, values: Sequence[Any]) -> dict[str, Any]:
        if len(values) != len(self.field_names):
            raise SerdeError(
                f"table {self.table.qualified_name}: row has {len(values)} values, "
                f"schema version {self.table.version} has {len(self.field_names)} columns"
            )
        record = dict(zip(self.field_names, values, strict=True))
        i = -1
        try:
            for i, name, conv in self._to:
                value = values[i]
                if value is not None:
                    record[name] = conv(value)
        except (TypeError, ValueError, AttributeError) as e:
            raise self._bad_value(i, values[i], e) from e
        return record

    def from_avro(self, record: dict[str, Any]) -> tuple[Any, ...]:
        values = self._take(record)
        if not self._from:
            return values
        out = list(values)
        i = -1
        try:
            for i, conv in self._from:
                value = out[i]
                if value is not None:
                    out[i] = conv(value)
        except (TypeError, ValueError, OverflowError) as e:
            raise self._bad_value(i, out[i], e) from e
        return tuple(out)

    def _bad_value(self, i: int, value: Any, cause: Exception) -> SerdeError:
        col = self.table.columns[i]
        return SerdeError(
            f"column {self.table.qualified_name}.{col.name} ({col.column_type}): cannot convert "
            f"{type(value).__name__} value {value!r:.80}: {cause}"
        )


# --- the row envelope ----------------------------------------------------------------------


def row_record_name(table: TableSchema) -> str:
    """Full Avro name of a table's envelope: ``sluice.row.<db>.<table>`` (sanitized)."""
    return f"sluice.row.{avro_name(table.database)}.{avro_name(table.table, type_name=True)}"


def row_envelope_schema(table: TableSchema) -> dict[str, Any]:
    """The Avro schema of a table's Row events (one per table schema version).

    ``before``/``after`` share one ``Value`` record, defined in ``before`` and referenced by
    name in ``after``. Record props carry the table's identity and key.
    """
    full_name = row_record_name(table)
    where = table.qualified_name
    value = {
        "type": "record",
        "name": f"{full_name}.Value",  # = RowCodec.value_record_name
        "fields": [
            avro_field(col, name, where)
            for col, name in zip(table.columns, field_names(table), strict=True)
        ],
    }
    return {
        "type": "record",
        "name": full_name,
        "doc": f"Row changes of {where}, schema version {table.version}",
        "sluice.kind": ROW_KIND,
        "sluice.database": table.database,
        "sluice.table": table.table,
        "sluice.primary_key": list(table.primary_key),
        "sluice.version": table.version,
        "fields": [
            {"name": "op", "type": load_avsc("Op")},
            {"name": "before", "type": ["null", value], "default": None},
            {"name": "after", "type": ["null", value["name"]], "default": None},
            {"name": "source", "type": load_avsc("SourcePosition")},
            {"name": "event_id", "type": "string"},
            {"name": "ts_ms", "type": "long"},
            {"name": "table", "type": "string"},
            {"name": "schema_version", "type": "int"},
        ],
    }


def table_from_avro(schema: dict[str, Any]) -> TableSchema:
    """Rebuild the :class:`TableSchema` a row envelope schema was made from."""
    if schema.get("sluice.kind") != ROW_KIND:
        raise SerdeError(f"schema {schema.get('name')!r} is not a Sluice row envelope")
    before = next(f for f in schema["fields"] if f["name"] == "before")
    value = next(t for t in before["type"] if isinstance(t, dict))
    columns = tuple(Column.from_json(field[COLUMN_PROP]) for field in value["fields"])
    return TableSchema(
        database=schema["sluice.database"],
        table=schema["sluice.table"],
        columns=columns,
        primary_key=tuple(schema["sluice.primary_key"]),
        version=schema["sluice.version"],
    )

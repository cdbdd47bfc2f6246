"""What a TABLE_MAP event says about the schema its rows were written with.

A binlog row event carries values; the TABLE_MAP event before it says, per column, the binlog
type and its metadata (integer width, DECIMAL digits, fractional seconds, string length in
bytes, BLOB/TEXT size, ENUM/SET members, BIT width), and with ``binlog_row_metadata=FULL``
the name, signedness, collation and primary key; its null bitmap says which columns take
NULL. That is not a declared schema (``VARCHAR(20)`` shows as 80 bytes of utf8mb4, no
defaults), but it is exact about the shape of the rows: a schema whose columns disagree with
it (an INT the map calls VARCHAR, one column more, another key) was not the one the rows
were written with, whatever the names say (issue 14: rows written as INT decoded as VARCHAR
after ``ALTER TABLE … MODIFY``, or with the schema of a table since dropped and created
again).

:func:`mismatch` compares a schema with a TABLE_MAP; :func:`schema_from_table_map` builds the
schema from the TABLE_MAP alone when no better one fits.
"""

from __future__ import annotations

import re
from typing import Any

from pymysqlreplication.constants import FIELD_TYPE

from schemas.mysql_types import sql_list_members
from schemas.table import Column, TableSchema
from source_connectors.mysql.field_types import PLAIN_TYPE_NAMES

_TEMPORAL = {
    FIELD_TYPE.TIME2: "time",
    FIELD_TYPE.TIME: "time",
    FIELD_TYPE.DATETIME2: "datetime",
    FIELD_TYPE.DATETIME: "datetime",
    FIELD_TYPE.TIMESTAMP2: "timestamp",
    FIELD_TYPE.TIMESTAMP: "timestamp",
}
_WITH_FSP = (FIELD_TYPE.TIME2, FIELD_TYPE.DATETIME2, FIELD_TYPE.TIMESTAMP2)
# Bytes per character (MAXLEN of information_schema.CHARACTER_SETS) of the usual charsets:
# a string column's TABLE_MAP length is in bytes.
CHARSET_MAXLEN = {
    "utf8mb4": 4, "utf8mb3": 3, "utf8": 3, "latin1": 1, "latin2": 1, "ascii": 1, "binary": 1,
    "cp1250": 1, "cp1251": 1, "cp1256": 1, "cp1257": 1, "cp850": 1, "greek": 1, "hebrew": 1,
    "koi8r": 1, "koi8u": 1, "swe7": 1, "tis620": 1, "ucs2": 2, "utf16": 4, "utf16le": 4,
    "utf32": 4, "gbk": 2, "gb2312": 2, "big5": 2, "sjis": 2, "cp932": 2, "euckr": 2,
    "ujis": 3, "eucjpms": 3,
}  # fmt: skip

# The binlog types each information_schema DATA_TYPE is written as (old and new formats).
_CODES: dict[str, tuple[int, ...]] = {
    "tinyint": (FIELD_TYPE.TINY,),
    "smallint": (FIELD_TYPE.SHORT,),
    "mediumint": (FIELD_TYPE.INT24,),
    "int": (FIELD_TYPE.LONG,),
    "integer": (FIELD_TYPE.LONG,),
    "bigint": (FIELD_TYPE.LONGLONG,),
    "float": (FIELD_TYPE.FLOAT,),
    "double": (FIELD_TYPE.DOUBLE,),
    "real": (FIELD_TYPE.DOUBLE,),
    "decimal": (FIELD_TYPE.NEWDECIMAL,),
    "numeric": (FIELD_TYPE.NEWDECIMAL,),
    "date": (FIELD_TYPE.DATE, FIELD_TYPE.NEWDATE),
    "time": (FIELD_TYPE.TIME2, FIELD_TYPE.TIME),
    "datetime": (FIELD_TYPE.DATETIME2, FIELD_TYPE.DATETIME),
    "timestamp": (FIELD_TYPE.TIMESTAMP2, FIELD_TYPE.TIMESTAMP),
    "year": (FIELD_TYPE.YEAR,),
    "char": (FIELD_TYPE.STRING,),
    "binary": (FIELD_TYPE.STRING,),
    "varchar": (FIELD_TYPE.VARCHAR, FIELD_TYPE.VAR_STRING),
    "varbinary": (FIELD_TYPE.VARCHAR, FIELD_TYPE.VAR_STRING),
    "enum": (FIELD_TYPE.ENUM,),
    "set": (FIELD_TYPE.SET,),
    "bit": (FIELD_TYPE.BIT,),
    "json": (FIELD_TYPE.BLOB, FIELD_TYPE.JSON),  # MariaDB: LONGTEXT; MySQL: its own type
    "geometry": (FIELD_TYPE.GEOMETRY,),
    "point": (FIELD_TYPE.GEOMETRY,),
    "linestring": (FIELD_TYPE.GEOMETRY,),
    "polygon": (FIELD_TYPE.GEOMETRY,),
    "multipoint": (FIELD_TYPE.GEOMETRY,),
    "multilinestring": (FIELD_TYPE.GEOMETRY,),
    "multipolygon": (FIELD_TYPE.GEOMETRY,),
    "geometrycollection": (FIELD_TYPE.GEOMETRY,),
    "inet4": (FIELD_TYPE.STRING,),
    "inet6": (FIELD_TYPE.STRING,),
    "uuid": (FIELD_TYPE.STRING,),
}
_LENGTH_SIZES = {"tiny": 1, "": 2, "medium": 3, "long": 4}
_BLOBS = {n: size for size, n in _LENGTH_SIZES.items()}
for _size in _LENGTH_SIZES:
    _CODES[f"{_size}text"] = _CODES[f"{_size}blob"] = (FIELD_TYPE.BLOB,)
_NUMERIC = frozenset(
    {FIELD_TYPE.TINY, FIELD_TYPE.SHORT, FIELD_TYPE.INT24, FIELD_TYPE.LONG, FIELD_TYPE.LONGLONG}
    | {FIELD_TYPE.FLOAT, FIELD_TYPE.DOUBLE, FIELD_TYPE.NEWDECIMAL}
)
_STRINGS = frozenset({FIELD_TYPE.STRING, FIELD_TYPE.VARCHAR, FIELD_TYPE.VAR_STRING})
_CHARACTERS = re.compile(r"^\w+\((\d+)\)")


def map_charset(col: Any) -> str | None:
    """A TABLE_MAP column's character set as information_schema names it (the library's
    ``character_set_name`` is a Python codec: ``utf8`` for utf8mb4), None for binary."""
    collation = getattr(col, "collation_name", None)
    if not collation:
        return None
    charset = str(collation).split("_", 1)[0]
    return None if charset == "binary" else same_charset_name(charset)


def same_charset_name(charset: str | None) -> str | None:
    """``utf8`` is ``utf8mb3`` (older servers say the one, newer the other)."""
    return "utf8mb3" if charset == "utf8" else charset


def _maxlen(charset: str | None) -> int | None:
    return 1 if charset is None else CHARSET_MAXLEN.get(charset)


def nullable_flags(null_bitmask: bytes | None, count: int) -> tuple[bool, ...] | None:
    """Which of ``count`` columns take NULL, from a TABLE_MAP's null bitmap."""
    if null_bitmask is None or len(null_bitmask) * 8 < count:
        return None
    return tuple(bool(null_bitmask[i >> 3] & (1 << (i & 7))) for i in range(count))


def _column_mismatch(col: Column, tm: Any) -> str | None:
    """Why ``col`` cannot be the column ``tm`` describes, else None."""
    dt = col.data_type.lower()
    code = tm.type
    codes = _CODES.get(dt)
    if codes is None:
        return None  # a type this table does not know: only the name is compared
    if code not in codes:
        return f"binlog type {code}, not {col.column_type}"
    if code in _NUMERIC and bool(tm.unsigned) != col.unsigned:
        return "signedness differs"
    if code == FIELD_TYPE.NEWDECIMAL and (
        (tm.precision, tm.decimals) != (col.numeric_precision, col.numeric_scale)
    ):
        return f"decimal({tm.precision},{tm.decimals}), not {col.column_type}"
    if code in _WITH_FSP and getattr(tm, "fsp", 0) != (col.datetime_precision or 0):
        return f"{tm.fsp} fractional digits, not {col.column_type}"
    if code == FIELD_TYPE.BLOB and dt != "json":
        size = dt.removesuffix("text").removesuffix("blob")
        if _LENGTH_SIZES.get(size) != tm.length_size:
            return f"a {tm.length_size}-byte length, not {col.column_type}"
    if code == FIELD_TYPE.ENUM and (tm.enum_values or [""])[1:] != sql_list_members(
        col.column_type
    ):
        return f"other ENUM members than {col.column_type}"
    if code == FIELD_TYPE.SET and list(tm.set_values or []) != sql_list_members(col.column_type):
        return f"other SET members than {col.column_type}"
    if code == FIELD_TYPE.BIT:
        declared = _CHARACTERS.match(col.column_type)
        if declared is not None and int(declared[1]) != tm.bits:
            return f"bit({tm.bits}), not {col.column_type}"
    if code in _STRINGS or code in (FIELD_TYPE.BLOB, FIELD_TYPE.ENUM, FIELD_TYPE.SET):
        charset = map_charset(tm)
        if tm.collation_name and charset != same_charset_name(col.character_set or None):
            return f"charset {charset or 'binary'}, not {col.character_set or 'binary'}"
    if code in _STRINGS and dt in ("char", "varchar", "binary", "varbinary"):
        declared = _CHARACTERS.match(col.column_type)
        maxlen = _maxlen(same_charset_name(col.character_set))
        if declared and maxlen and int(declared[1]) * maxlen != tm.max_length:
            return f"{tm.max_length} bytes long, not {col.column_type}"
    return None


def mismatch(
    schema: TableSchema, table: Any, nullable: tuple[bool, ...] | None = None
) -> str | None:
    """Why the rows of a TABLE_MAP's ``table`` were not written with ``schema`` (one
    phrase naming the column), else None. ``nullable``: the map's null bitmap, when known."""
    columns = table.columns
    if len(columns) != len(schema.columns):
        return f"{len(columns)} columns, not {len(schema.columns)}"
    for i, (tm, col) in enumerate(zip(columns, schema.columns, strict=True)):
        if tm.name != col.name:
            return f"column {i + 1} is {tm.name}, not {col.name}"
        why = _column_mismatch(col, tm)
        if why is None and nullable is not None and nullable[i] != col.nullable:
            why = "NULL-able" if nullable[i] else "NOT NULL"
        if why is not None:
            return f"column {col.name}: {why}"
    mapped = {c.name for c in columns if c.is_primary}
    if mapped and mapped != set(schema.primary_key):
        return f"primary key ({', '.join(sorted(mapped))}), not ({', '.join(schema.primary_key)})"
    return None


def _quoted_list(values: list[str]) -> str:
    return ",".join("'" + v.replace("'", "''") + "'" for v in values)


def column_from_table_map(col: Any, nullable: bool = True) -> Column:
    """A :class:`Column` from one column of a TABLE_MAP event (with FULL row metadata).
    Without the map's null bitmap, NULL-able (the safe guess)."""
    code, name = col.type, col.name
    charset = map_charset(col)
    binary = charset is None and bool(getattr(col, "collation_name", None))
    precision = scale = fsp = None
    if code in PLAIN_TYPE_NAMES:
        data_type = column_type = PLAIN_TYPE_NAMES[code]
        if col.unsigned and code not in (FIELD_TYPE.DATE, FIELD_TYPE.YEAR, FIELD_TYPE.JSON):
            column_type += " unsigned"
    elif code == FIELD_TYPE.NEWDECIMAL:
        precision, scale = col.precision, col.decimals
        data_type, column_type = "decimal", f"decimal({precision},{scale})"
        column_type += " unsigned" if col.unsigned else ""
    elif code in _TEMPORAL:
        data_type, fsp = _TEMPORAL[code], getattr(col, "fsp", 0)
        column_type = f"{data_type}({fsp})" if fsp else data_type
    elif code in _STRINGS:
        data_type = ("varbinary" if binary else "varchar") if code != FIELD_TYPE.STRING else (
            "binary" if binary else "char"
        )  # fmt: skip
        maxlen = _maxlen(charset) or 1
        length = col.max_length // maxlen if col.max_length % maxlen == 0 else col.max_length
        column_type = f"{data_type}({length})"
    elif code in (FIELD_TYPE.ENUM, FIELD_TYPE.SET):
        data_type = "enum" if code == FIELD_TYPE.ENUM else "set"
        members = (col.enum_values or [""])[1:] if data_type == "enum" else col.set_values or []
        column_type = f"{data_type}({_quoted_list(members)})"
    elif code == FIELD_TYPE.BIT:
        data_type, column_type = "bit", f"bit({col.bits})"
    elif code == FIELD_TYPE.BLOB:
        size = _BLOBS.get(col.length_size, "long")
        data_type = column_type = f"{size}blob" if binary else f"{size}text"
    else:
        raise ValueError(f"column {name!r} has binlog type {code}, which Sluice cannot decode")
    return Column(
        name=name,
        data_type=data_type,
        column_type=column_type,
        nullable=nullable,
        numeric_precision=precision,
        numeric_scale=scale,
        datetime_precision=fsp,
        character_set=charset,
    )


def schema_from_table_map(
    table: Any,
    version: int,
    primary_key: tuple[str, ...],
    nullable: tuple[bool, ...] | None = None,
) -> TableSchema:
    """The schema a row event was written with, from its TABLE_MAP; the key from the map's
    primary key metadata, else ``primary_key`` (the last one known) where its columns are."""
    flags = nullable or (True,) * len(table.columns)
    columns = tuple(column_from_table_map(c, n) for c, n in zip(table.columns, flags, strict=True))
    names = {c.name for c in columns}
    mapped = tuple(c.name for c in table.columns if c.is_primary)
    key = mapped or tuple(k for k in primary_key if k in names)
    return TableSchema(table.schema, table.table, columns, key, version)

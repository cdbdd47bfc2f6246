"""How a row event becomes Kafka records, in each output shape of ``kafkawriter``.

* ``debezium`` — the value layout of Debezium's MySQL connector under Kafka Connect's JSON
  converter with ``schemas.enable=false``: ``{before, after, source, op, ts_ms,
  transaction}``, key ``{"<pk>": value}``. Values follow Debezium's defaults
  (``time.precision.mode=adaptive_time_microseconds``, ``binary.handling.mode=bytes``):
  DATE = days since 1970-01-01, TIME = microseconds, DATETIME(0-3) = epoch milliseconds,
  DATETIME(4-6) = epoch microseconds (both read as UTC), TIMESTAMP = ISO-8601 UTC text
  (``2024-05-01T12:00:00.5Z``), bytes base64 (as the JSON converter writes them), BIT(1) a
  boolean and BIT(n) little-endian bytes. DECIMAL follows ``decimalHandling``: ``string``
  by default, since schemaless JSON cannot carry the scale that ``precise`` bytes need.
  Zero dates become null (epoch 0 in a NOT NULL column), as Debezium does. A delete is
  followed by a tombstone (``tombstonesOnDelete``); an update that changes the key becomes a
  delete of the old key (+ tombstone) and a create of the new one, as in Debezium.
* ``json`` — FlinkX's row (``pavingData: false``): ``{schema, table, ts, opTime, type,
  before, after}``, ``before``/``after`` column objects or null.
* ``paving`` — FlinkX's flat row (``pavingData: true``): ``{schema, table, ts, opTime, type,
  before_<col>..., after_<col>...}``, every column on both sides (null where absent).
  In both FlinkX shapes ``type`` is INSERT/UPDATE/DELETE (snapshot rows are INSERT), ``opTime``
  is the event time in ms and ``ts`` FlinkX's id: ``opTime << 22 | sequence``. Values: numbers
  as JSON numbers, DECIMAL as exact text, bytes base64, DATE ``yyyy-mm-dd``,
  DATETIME/TIMESTAMP ``yyyy-mm-dd hh:mm:ss[.ffffff]`` (TIMESTAMP in UTC), TIME as MySQL
  prints it, zero dates as MySQL prints them.
* ``avro`` — Sluice's own row envelope in the Confluent wire format (the data topic's), its
  schema in the job's registry.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from coordinator.errors import TaskFailed
from schemas import types
from schemas.events import Op, RowEvent
from schemas.postgres_types import POSTGRES
from schemas.serde import EventSerde
from schemas.table import TableSchema
from sink_connectors.base import OutputRecord
from sink_connectors.hdfs.formats import render_time

Convert = Callable[[Any], Any]
WHERE = "job.content[0].writer.parameter"
EPOCH = datetime(1970, 1, 1)
EPOCH_DAY = date(1970, 1, 1)
MICRO = timedelta(microseconds=1)
DEBEZIUM_OP = {Op.SNAPSHOT: "r", Op.INSERT: "c", Op.UPDATE: "u", Op.DELETE: "d"}
FLINKX_TYPE = {Op.SNAPSHOT: "INSERT", Op.INSERT: "INSERT", Op.UPDATE: "UPDATE", Op.DELETE: "DELETE"}


def _version() -> str:
    try:
        from importlib.metadata import version

        return f"sluice-{version('sluice')}"
    except Exception:  # noqa: BLE001 - not installed as a package: a source checkout
        return "sluice"


VERSION = _version()


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json(obj: object) -> bytes:
    return _ENCODER.encode(obj).encode()


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


# --- values: FlinkX text forms ----------------------------------------------------------------


def text_value(value: object) -> object:
    """A value as FlinkX's JSON rows show it (see the module docstring)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray):
        return _b64(bytes(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return render_time(value)
    return str(value)


# --- values: Debezium's defaults --------------------------------------------------------------


def _zero(nullable: bool, epoch: object) -> object:
    # PyMySQL hands zero and partial dates over as str; Debezium makes them null, or the
    # epoch where the column cannot be null.
    return None if nullable else epoch


def _decimal(mode: str) -> Convert:
    if mode == "double":
        return float
    if mode == "precise":  # Kafka Connect Decimal: two's-complement unscaled value, base64

        def precise(v: Decimal) -> str:
            unscaled = int(v.scaleb(-v.as_tuple().exponent))  # type: ignore[operator]
            size = max(1, (unscaled.bit_length() + 8) // 8)
            return _b64(unscaled.to_bytes(size, "big", signed=True))

        return precise
    return lambda v: format(v, "f")


def _bits(width: int) -> Convert:
    size = max(1, (width + 7) // 8)
    if width == 1:
        return lambda v: int.from_bytes(v, "big") != 0
    return lambda v: _b64(int.from_bytes(v, "big").to_bytes(size, "little"))


def _timestamp_text(v: datetime) -> str:
    text = v.isoformat(timespec="seconds")
    if v.microsecond:
        text += "." + f"{v.microsecond:06d}".rstrip("0")
    return text + "Z"


def debezium_converter(col: Any, decimal_mode: str) -> Convert:
    """The converter of one column's non-null values to what Debezium's JSON shows."""
    lt = col.logical
    kind = lt.kind
    nullable = col.nullable
    if kind in (types.DECIMAL, types.NUMERIC):
        return _decimal(decimal_mode)
    if kind == types.BIT:
        return _bits(lt.bits or 1)
    if kind == types.BYTES:
        return _b64
    if kind == types.DATE:
        return lambda v: _zero(nullable, 0) if isinstance(v, str) else (v - EPOCH_DAY).days
    if kind == types.TIME:
        return lambda v: v // MICRO
    if kind == types.TIMESTAMP:
        millis = (lt.fsp or 0) <= 3

        def stamp(v: datetime | str) -> object:
            if isinstance(v, str):
                return _zero(nullable, 0)
            micros = (v - EPOCH) // MICRO
            return micros // 1000 if millis else micros

        return stamp
    if kind == types.TIMESTAMP_TZ:
        return lambda v: (
            _zero(nullable, "1970-01-01T00:00:00Z") if isinstance(v, str) else _timestamp_text(v)
        )
    return _same  # numbers and text unchanged


def _same(value: object) -> object:
    return value


# --- per table ---------------------------------------------------------------------------------


class TableLayout:
    """What one table version's events become: the columns written (``tableFields``), the
    key columns, and a converter per column."""

    def __init__(
        self, table: TableSchema, fields: Sequence[str], key: Sequence[str], fmt: str, decimal: str
    ) -> None:
        self.table = table
        names = list(fields) or list(table.column_names)
        self.index = [self._column(table, n, "tableFields") for n in names]
        self.names = [table.columns[i].name for i in self.index]
        key_names = list(key) or list(table.primary_key)
        self.key_index = [self._column(table, n, "key") for n in key_names]
        self.key_names = [table.columns[i].name for i in self.key_index]
        if fmt == "debezium":
            convert = [debezium_converter(c, decimal) for c in table.columns]
        else:
            convert = [text_value] * len(table.columns)
        # (name, index, converter) per written column; None where values pass unchanged.
        self.columns = [
            (n, i, None if convert[i] is _same else convert[i])
            for n, i in zip(self.names, self.index, strict=True)
        ]
        self.key_columns = [
            (n, i, None if convert[i] is _same else convert[i])
            for n, i in zip(self.key_names, self.key_index, strict=True)
        ]
        self.projected = TableSchema(
            table.database,
            table.table,
            tuple(table.columns[i] for i in self.index),
            tuple(n for n in table.primary_key if n in self.names),
            table.version,
        )

    @staticmethod
    def _column(table: TableSchema, name: str, key: str) -> int:
        index = table.column_index.get(name)
        if index is None:  # MySQL column names are case-insensitive
            lower = {c.lower(): i for c, i in table.column_index.items()}
            index = lower.get(name.lower())
        if index is None:
            raise TaskFailed(
                f"{WHERE}.{key}: column {name!r} is not in table {table.qualified_name} "
                f"(columns: {', '.join(table.column_names)})"
            )
        return index

    @staticmethod
    def _object(columns: list[Any], row: Sequence[object]) -> dict[str, object]:
        out: dict[str, object] = {}
        for name, i, convert in columns:
            v = row[i]
            out[name] = v if v is None or convert is None else convert(v)
        return out

    def image(self, row: Sequence[object] | None) -> dict[str, object] | None:
        return None if row is None else self._object(self.columns, row)

    def key(self, row: Sequence[object] | None) -> bytes | None:
        if row is None or not self.key_columns:
            return None
        return _json(self._object(self.key_columns, row))


class RecordEncoder:
    """Row events → :class:`OutputRecord` s, in one format, for one writer task."""

    def __init__(
        self,
        fmt: str,
        *,
        fields: Sequence[str] = (),
        key: Sequence[str] = (),
        server_name: str = "sluice",
        decimal: str = "string",
        tombstones: bool = True,
        serde: EventSerde | None = None,
        source_database: str | None = None,
    ) -> None:
        """``source_database``: the database a PostgreSQL source reads (its tables name
        only their schema), for Debezium's ``source.db``."""
        if fmt == "avro" and serde is None:
            raise ValueError("the avro format needs a serde")
        self.fmt = fmt
        self.fields = list(fields)
        self.key_columns = list(key)
        self.server_name = server_name
        self.decimal = decimal
        self.tombstones = tombstones
        self.serde = serde
        self.source_database = source_database
        self._layouts: dict[int, TableLayout] = {}

    def layout(self, table: TableSchema) -> TableLayout:
        found = self._layouts.get(id(table))
        if found is None or found.table is not table:
            found = TableLayout(table, self.fields, self.key_columns, self.fmt, self.decimal)
            self._layouts[id(table)] = found
        return found

    def records(self, topic: str, ev: RowEvent) -> list[OutputRecord]:
        lay = self.layout(ev.table)
        if self.fmt == "debezium":
            return self._debezium(topic, ev, lay)
        key = lay.key(ev.after if ev.after is not None else ev.before)
        if self.fmt == "avro":
            assert self.serde is not None
            projected = RowEvent(
                ev.op,
                lay.projected,
                _pick(ev.before, lay.index),
                _pick(ev.after, lay.index),
                ev.source,
                ev.ts_ms,
            )
            return [OutputRecord(topic, key, self.serde.encode(projected))]
        head: dict[str, object] = {
            "schema": ev.table.database,
            "table": ev.table.table,
            "ts": (ev.ts_ms << 22) | (ev.source.seq & 0x3FFFFF),
            "opTime": ev.ts_ms,
            "type": FLINKX_TYPE[ev.op],
        }
        before, after = lay.image(ev.before), lay.image(ev.after)
        if self.fmt == "json":
            value = {**head, "before": before, "after": after}
        else:
            value = dict(head)
            for side, image in (("before", before), ("after", after)):
                value.update({f"{side}_{n}": (image or {}).get(n) for n in lay.names})
        return [OutputRecord(topic, key, _json(value))]

    # -- Debezium ----------------------------------------------------------------------------

    def _source_block(self, ev: RowEvent) -> dict[str, object]:
        """Debezium's ``source`` block, as its connector for the source's family writes it."""
        src = ev.source
        if ev.table.columns and ev.table.columns[0].dialect == POSTGRES:
            return {
                "version": VERSION,
                "connector": "postgresql",
                "name": self.server_name,
                "ts_ms": ev.ts_ms,
                "snapshot": "true" if ev.op is Op.SNAPSHOT else "false",
                "db": self.source_database or ev.table.database,
                "sequence": None,
                "schema": ev.table.database,
                "table": ev.table.table,
                "txId": int(src.gtid) if src.gtid and src.gtid.isdigit() else None,
                "lsn": src.pos,
                "xmin": None,
            }
        return {
            "version": VERSION,
            "connector": "mysql",
            "name": self.server_name,
            "ts_ms": ev.ts_ms,
            "snapshot": "true" if ev.op is Op.SNAPSHOT else "false",
            "db": ev.table.database,
            "sequence": None,
            "table": ev.table.table,
            "server_id": _server_id(src.gtid),
            "gtid": src.gtid,
            "file": src.file or "",
            "pos": src.pos or 0,
            "row": src.row or 0,
            "thread": None,
            "query": None,
        }

    def _debezium(self, topic: str, ev: RowEvent, lay: TableLayout) -> list[OutputRecord]:
        source = self._source_block(ev)
        now = int(time.time() * 1000)

        def envelope(op: str, before: object, after: object) -> bytes:
            return _json(
                {
                    "before": before,
                    "after": after,
                    "source": source,
                    "op": op,
                    "ts_ms": now,
                    "transaction": None,
                }
            )

        before, after = lay.image(ev.before), lay.image(ev.after)
        old_key, new_key = lay.key(ev.before), lay.key(ev.after)
        out: list[OutputRecord] = []
        if ev.op is Op.UPDATE and old_key != new_key:
            # Debezium: a key change is a delete of the old key and a create of the new one,
            # so a compacted topic keeps no stale row under the old key.
            new_h: list[tuple[str, str | bytes | None]] = [("__debezium.newkey", new_key)]
            old_h: list[tuple[str, str | bytes | None]] = [("__debezium.oldkey", old_key)]
            out.append(OutputRecord(topic, old_key, envelope("d", before, None), new_h))
            if self.tombstones:
                out.append(OutputRecord(topic, old_key, None, new_h))
            out.append(OutputRecord(topic, new_key, envelope("c", None, after), old_h))
            return out
        key = new_key if ev.after is not None else old_key
        out.append(OutputRecord(topic, key, envelope(DEBEZIUM_OP[ev.op], before, after)))
        if ev.op is Op.DELETE and self.tombstones:
            out.append(OutputRecord(topic, key, None))
        return out


def _pick(row: tuple[object, ...] | None, index: Sequence[int]) -> tuple[object, ...] | None:
    return None if row is None else tuple(row[i] for i in index)


def _server_id(gtid: str | None) -> int:
    """MariaDB GTIDs are ``domain-server-sequence``; a MySQL GTID names no server id."""
    if gtid:
        parts = gtid.split(",")[-1].split("-")
        if len(parts) == 3 and parts[1].isdigit():
            return int(parts[1])
    return 0

"""Faster binlog decoding: parsed TABLE_MAP events are reused instead of rebuilt, and row
images are read with a per-table plan.

Every transaction starts its row events with a TABLE_MAP event per table, and
mysql-replication builds a ``Column`` object per column, a ``Table``, and matches the
optional (FULL) metadata to the columns for each one — for OLTP writes (one or a few rows
per transaction) that is most of the decoding time (issue #9). The bytes of a TABLE_MAP event
body say everything the parse depends on (table id, names, types, metadata, optional
metadata), so :func:`install_table_map_cache` keys a cache on them: an event seen before gets
the attributes the first parse produced, shared (nothing mutates them after the parse), and
its ``Table`` is put in the reader's table map exactly as a parse would. A changed table
(ALTER) has other bytes, so a new parse; so has a re-used table id.

A row image is read column by column by the library, looking the column, its name and its
signedness up through the table map for every value and walking a long type switch.
:func:`install_row_reader` reads full row images (``binlog_row_image=FULL``, what the reader
requires) with a plan made once per table map: name, a direct reader for the integer and
floating types, the library's own value reader for every other type (so strings, decimals,
temporal values, JSON … decode exactly as before). Anything else — a MINIMAL image, a partial
JSON update, a column without a name — goes to the library's code unchanged.

The library is pinned (``mysql-replication==1.0.17``); if ``TableMapEvent`` stops looking as
this expects, the install fails loudly at import rather than decoding wrongly.
"""

from __future__ import annotations

import inspect
import os
import struct
from collections.abc import Callable
from typing import Any

from pymysqlreplication.bitmap import BitCount
from pymysqlreplication.constants import BINLOG, FIELD_TYPE, NONE_SOURCE
from pymysqlreplication.event import BinLogEvent
from pymysqlreplication.row_event import RowsEvent, TableMapEvent

MAX_ENTRIES = 4096

# Attributes BinLogEvent.__init__ sets per event; everything else a parse sets is reused.
_PER_EVENT = frozenset(
    {
        "packet",
        "table_map",
        "event_type",
        "timestamp",
        "event_size",
        "_post_header_lengths",
        "_ctl_connection",
        "mysql_version",
        "_ignore_decode_errors",
        "_verify_checksum",
        "_is_event_valid",
        "complete",
        "dbms",
    }
)
_FILTERS = ("only_tables", "ignored_tables", "only_schemas", "ignored_schemas")
_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
_stats = {"hits": 0}
_parse = TableMapEvent.__init__


_frozen_filters: dict[int, tuple[Any, Any]] = {}


def _frozen(value: Any) -> Any:
    """A filter list as part of a cache key; one reader passes the same list every time."""
    if value is None:
        return None
    held = _frozen_filters.get(id(value))
    if held is None or held[0] is not value:
        held = (value, tuple(sorted(map(str, value))))
        if len(_frozen_filters) >= MAX_ENTRIES:
            _frozen_filters.clear()
        _frozen_filters[id(value)] = held  # the list is kept: its id is not reused
    return held[1]


def _cached_init(
    self: Any, from_packet: Any, event_size: int, table_map: Any, ctl_connection: Any, **kw: Any
) -> None:
    raw = from_packet.packet  # pymysql's packet; the wrapper has read only the header so far
    body = bytes(raw._data[raw._position : raw._position + event_size])
    key = (
        body,
        *(_frozen(kw.get(f)) for f in _FILTERS),
        bool(kw.get("freeze_schema")),
        bool(kw.get("optional_meta_data")),
        bool(kw.get("use_column_name_cache")),
        from_packet.charset if hasattr(from_packet, "charset") else None,
    )
    state = _cache.get(key)
    if state is None or table_map is None:
        _parse(self, from_packet, event_size, table_map, ctl_connection, **kw)
        if len(_cache) >= MAX_ENTRIES:
            _cache.clear()
        _cache[key] = {k: v for k, v in self.__dict__.items() if k not in _PER_EVENT}
        return
    _stats["hits"] += 1
    BinLogEvent.__init__(self, from_packet, event_size, table_map, ctl_connection, **kw)
    self.__dict__.update(state)
    if state.get("_processed") and "table_obj" in state:
        table_map[state["table_id"]] = state["table_obj"]


def install_table_map_cache() -> None:
    params = list(inspect.signature(_parse).parameters)
    if params[:5] != ["self", "from_packet", "event_size", "table_map", "ctl_connection"]:
        raise ImportError(f"mysql-replication changed: TableMapEvent.__init__{params}")
    TableMapEvent.__init__ = _cached_init


def cache_size() -> int:
    return len(_cache)


def cache_hits() -> int:
    """TABLE_MAP events served from the cache instead of parsed, since the process began."""
    return _stats["hits"]


# --- row images ----------------------------------------------------------------------------


def _fixed(fmt: str) -> Callable[[Any], Any]:
    unpack, size = struct.Struct(fmt).unpack, struct.calcsize(fmt)
    return lambda packet: unpack(packet.read(size))[0]


_DIRECT = {
    (FIELD_TYPE.TINY, False): _fixed("<b"),
    (FIELD_TYPE.TINY, True): _fixed("<B"),
    (FIELD_TYPE.SHORT, False): _fixed("<h"),
    (FIELD_TYPE.SHORT, True): _fixed("<H"),
    (FIELD_TYPE.LONG, False): _fixed("<i"),
    (FIELD_TYPE.LONG, True): _fixed("<I"),
    (FIELD_TYPE.LONGLONG, False): _fixed("<q"),
    (FIELD_TYPE.LONGLONG, True): _fixed("<Q"),
    (FIELD_TYPE.FLOAT, False): _fixed("<f"),
    (FIELD_TYPE.FLOAT, True): _fixed("<f"),
    (FIELD_TYPE.DOUBLE, False): _fixed("<d"),
    (FIELD_TYPE.DOUBLE, True): _fixed("<d"),
}
Plan = tuple[tuple[int, str, bool, Any, Callable[[Any], Any] | None], ...]
_plans: dict[int, tuple[Any, Plan | None]] = {}
_read_columns = RowsEvent._read_column_data
_read_value: Any = getattr(RowsEvent, "_RowsEvent__read_values_name", None)


def _plan(columns: Any) -> Plan | None:
    """How to read each column of a full image; None when the library must (no name)."""
    held = _plans.get(id(columns))
    if held is not None and held[0] is columns:
        return held[1]
    plan: Plan | None = tuple(
        (i, c.name, bool(c.unsigned), c, _DIRECT.get((c.type, bool(c.unsigned))))
        for i, c in enumerate(columns)
    )
    if plan is not None and not all(name for _i, name, _u, _c, _d in plan):
        plan = None
    if len(_plans) >= MAX_ENTRIES:
        _plans.clear()
    _plans[id(columns)] = (columns, plan)  # the columns are kept: their id is not reused
    return plan


def _fast_read_column_data(self: Any, cols_bitmap: Any, row_image_type: Any = None) -> Any:
    columns = self.columns
    if (
        self.event_type == BINLOG.PARTIAL_UPDATE_ROWS_EVENT
        or BitCount(cols_bitmap) != len(columns)
        or self.table_map[self.table_id].columns is not columns
    ):
        return _read_columns(self, cols_bitmap, row_image_type)
    plan = _plan(columns)
    if plan is None:
        return _read_columns(self, cols_bitmap, row_image_type)
    self.is_partial_json_update = False
    packet = self.packet
    null_bitmap = packet.read((len(columns) + 7) // 8)
    none_sources = self._RowsEvent__none_sources
    values: dict[str, Any] = {}
    for i, name, unsigned, column, direct in plan:
        if null_bitmap[i >> 3] & (1 << (i & 7)):
            none_sources[name] = NONE_SOURCE.NULL
            values[name] = None
        elif direct is not None:
            values[name] = direct(packet)
        else:
            values[name] = _read_value(
                self, column, null_bitmap, i, False, cols_bitmap, unsigned, i
            )
    return values


def install_row_reader() -> None:
    if _read_value is None:
        raise ImportError("mysql-replication changed: RowsEvent.__read_values_name is gone")
    params = list(inspect.signature(_read_value).parameters)
    expected = ["self", "column", "null_bitmap", "null_bitmap_index", "is_partial"]
    if params[:5] != expected:
        raise ImportError(f"mysql-replication changed: RowsEvent.__read_values_name{params}")
    RowsEvent._read_column_data = _fast_read_column_data


# An escape hatch (and the baseline of bench.cdc): the library's own decoding, unchanged.
if not os.environ.get("SLUICE_BINLOG_PLAIN_DECODE"):
    install_table_map_cache()
    install_row_reader()

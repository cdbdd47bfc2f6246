"""Turning row events into SQL on the target table, per FlinkX ``writeMode``.

=========  ============================  ==============================================
writeMode  SNAPSHOT / INSERT             UPDATE                           DELETE
=========  ============================  ==============================================
insert     ``INSERT INTO``               ``UPDATE … WHERE key = before``   by key
replace    ``REPLACE INTO``              ``REPLACE INTO`` (after image)    by key
update     ``INSERT … ON DUPLICATE KEY   as for INSERT                     by key
           UPDATE``
=========  ============================  ==============================================

Consecutive events of the same kind become one multi-row statement (``batchSize`` rows at
most); order is kept, so the last event of a key wins as it did in the source. When an
UPDATE changes the key, the old key is deleted first. Tables without a primary key are
matched on the whole before-image (``<=>``, ``LIMIT 1``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from coordinator.errors import ConfigError
from coordinator.mysql_client import column_by_name, columns_named, qualified, quote_ident
from schemas import types
from schemas.events import Op, RowEvent
from schemas.native import load
from schemas.table import TableSchema
from sink_connectors.base import source_indexes

MAX_STATEMENT_BYTES = 4 * 1024 * 1024

# The C inner loop (setup.py); without a compiler the Python below serves.
native = load("sink_connectors.mysql._sqltext")
if native is not None:
    native.configure(Decimal)


class Literal:
    """Values as SQL literals, exactly as PyMySQL's ``Connection.escape`` renders them.

    ``escape`` tries each type in turn and formats datetimes with ``str.format``: a third of
    a writer's time on a six-column row. Here the common row value types are rendered by
    exact type — a whole row at once in C when it is built (``_sqltext.c``) — and the rest
    by ``escape``. String escaping depends on the session's ``NO_BACKSLASH_ESCAPES``, which
    ``no_backslash_escapes`` reports (read per row: a ``SET sql_mode`` may change it).
    """

    def __init__(
        self,
        escape: Callable[[object], str],
        no_backslash_escapes: Callable[[], bool] = lambda: False,
    ) -> None:
        self.escape = escape
        self.no_backslash_escapes = no_backslash_escapes

    def __call__(self, value: object) -> str:
        cls = value.__class__
        if cls is int:
            return str(value)
        if cls is str:
            return self.escape(value)
        if value is None:
            return "NULL"
        if cls is datetime and value.tzinfo is None:  # type: ignore[attr-defined]
            return f"'{value.isoformat(' ')}'"  # type: ignore[attr-defined]
        if cls is Decimal:
            return format(value, "f")
        return self.escape(value)

    def row(self, values: tuple[object, ...], index: tuple[int, ...] | None = None) -> str:
        """``(v1,v2,…)``: every value, or those at ``index``."""
        if native is not None:
            try:
                return native.row_text(values, index, self, self.no_backslash_escapes())
            except UnicodeEncodeError:  # a lone surrogate has no UTF-8: PyMySQL's way below
                pass
        if index is None:
            return "(" + ",".join(map(self, values)) + ")"
        return "(" + ",".join([self(values[i]) for i in index]) + ")"


def fast_literal(
    escape: Callable[[object], str], no_backslash_escapes: Callable[[], bool] = lambda: False
) -> Literal:
    return Literal(escape, no_backslash_escapes)


@dataclass
class ColumnMapping:
    """Which source value goes into which target column, decided once per source schema."""

    target_columns: tuple[str, ...]
    source_index: tuple[int, ...]
    key_source_index: tuple[int, ...]
    key_columns: tuple[str, ...]


def map_columns(
    source: TableSchema,
    target: TableSchema,
    writer_columns: list[str] | None,
    where: str,
    update_key: list[str] | None = None,
) -> ColumnMapping:
    """By name when every writer column is a source column, else by position (FlinkX maps
    reader ``column`` i to writer ``column`` i). Rows are matched (UPDATE, DELETE) on
    ``update_key`` (FlinkX ``updateKey``) if given, else on the target's primary key."""
    asked = list(writer_columns) if writer_columns else list(source.column_names)
    # MySQL matches column names case-insensitively: so does the mapping; SQL uses the
    # target's own spelling.
    names = columns_named(asked, target, where)
    index = source_indexes(
        source, [column_by_name(source.column_names, n) or n for n in asked], where
    )
    by_target = dict(zip(names, index, strict=True))
    if update_key:
        real_key = [column_by_name(names, c) for c in update_key]
        missing_key = [c for c, r in zip(update_key, real_key, strict=True) if r is None]
        if missing_key:
            raise ConfigError(
                f"{where}.updateKey: {', '.join(map(repr, missing_key))} not among the "
                f"written columns {names}"
            )
        wanted = tuple(r for r in real_key if r is not None)
    else:
        wanted = target.primary_key
    missing_key = [c for c in wanted if c not in by_target]
    key = () if missing_key else wanted
    return ColumnMapping(
        target_columns=tuple(names),
        source_index=tuple(index),
        key_source_index=tuple(by_target[c] for c in key),
        key_columns=key,
    )


def text_forms(source: TableSchema) -> tuple[tuple[int, Callable[[object], str]], ...]:
    """(column index, to-text) of the source columns whose neutral kind MySQL has no type
    for (:func:`schemas.mysql_types.mysql_declaration` declares them as text): written as
    their exact text. A Decimal literal would pass through MySQL's DECIMAL(65,30) on its
    way into a text column and silently lose digits; a list would become a tuple literal."""
    out = []
    for i, col in enumerate(source.columns):
        lt = col.logical
        if lt.kind == types.NUMERIC or (
            lt.kind == types.DECIMAL and ((lt.precision or 0) > 65 or (lt.scale or 0) > 30)
        ):
            out.append((i, _decimal_text))
        elif lt.kind == types.ARRAY:
            out.append((i, _array_text))
    return tuple(out)


def _decimal_text(value: object) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _array_text(value: object) -> str:
    """A JSON array, its decimals and dates as text: what MySQL's JSON functions read."""
    return json.dumps(value, ensure_ascii=False, default=_json_text)


def _json_text(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


class StatementBuilder:
    def __init__(
        self,
        target: TableSchema,
        mapping: ColumnMapping,
        write_mode: str,
        batch_size: int,
        text_forms: tuple[tuple[int, Callable[[object], str]], ...] = (),
    ) -> None:
        self.table = qualified(target.database, target.table)
        self.m = mapping
        self._text_forms = text_forms
        self.mode = write_mode
        self.batch_size = batch_size
        n = len(mapping.source_index)
        self._identity_width = n if mapping.source_index == tuple(range(n)) else -1
        cols = ", ".join(quote_ident(c) for c in mapping.target_columns)
        verb = {"insert": "INSERT", "replace": "REPLACE", "update": "INSERT"}[write_mode]
        self._upsert_head = f"{verb} INTO {self.table} ({cols}) VALUES "
        self._upsert_tail = ""
        if write_mode == "update":
            non_key = [c for c in mapping.target_columns if c not in mapping.key_columns]
            sets = ", ".join(
                f"{quote_ident(c)}=VALUES({quote_ident(c)})"
                for c in non_key or mapping.target_columns
            )
            self._upsert_tail = f" ON DUPLICATE KEY UPDATE {sets}"

    def statements(self, events: list[RowEvent], lit: Literal) -> Iterator[tuple[str, int, int]]:
        """SQL for ``events`` in order, each with the range ``[lo, hi)`` of events it
        applies; multi-row where consecutive events allow it."""
        if self._text_forms:
            events = [
                replace(ev, before=self._as_text(ev.before), after=self._as_text(ev.after))
                for ev in events
            ]
        run_kind = ""
        run: list[str] = []
        run_start = 0
        run_bytes = 0
        for n, ev in enumerate(events):
            kind, item = self._item(ev, lit)
            if kind == "stmt":  # a statement of its own (keyed UPDATE, key change, no-key DELETE)
                if run:
                    yield self._close(run_kind, run), run_start, n
                    run, run_bytes = [], 0
                for sql in item if isinstance(item, list) else [item]:
                    yield sql, n, n + 1
                continue
            if run and (
                kind != run_kind or len(run) >= self.batch_size or run_bytes >= MAX_STATEMENT_BYTES
            ):
                yield self._close(run_kind, run), run_start, n
                run, run_bytes = [], 0
            if not run:
                run_start = n
            run_kind = kind
            run.append(item)  # type: ignore[arg-type]
            run_bytes += len(item)
        if run:
            yield self._close(run_kind, run), run_start, len(events)

    def _as_text(self, row: tuple[object, ...] | None) -> tuple[object, ...] | None:
        if row is None:
            return None
        out = list(row)
        for i, text in self._text_forms:
            if out[i] is not None:
                out[i] = text(out[i])
        return tuple(out)

    def _close(self, kind: str, items: list[str]) -> str:
        if kind == "upsert":
            return self._upsert_head + ",".join(items) + self._upsert_tail
        keys = ", ".join(quote_ident(c) for c in self.m.key_columns)
        return f"DELETE FROM {self.table} WHERE ({keys}) IN ({','.join(items)})"

    def _values(self, row: tuple[object, ...], lit: Literal) -> str:
        if len(row) == self._identity_width:  # every source column, in order: no indexing
            return lit.row(row)
        return lit.row(row, self.m.source_index)

    def _key(self, row: tuple[object, ...], lit: Literal) -> str:
        return lit.row(row, self.m.key_source_index)

    def _item(self, ev: RowEvent, lit: Literal) -> tuple[str, str | list[str]]:
        op = ev.op
        if op is Op.DELETE:
            assert ev.before is not None
            if self.m.key_columns:
                return "delete", self._key(ev.before, lit)
            return "stmt", self._delete_whole_row(ev.before, lit)
        assert ev.after is not None
        if op is Op.UPDATE and ev.before is not None:
            key_changed = self.m.key_columns and self._key(ev.before, lit) != self._key(
                ev.after, lit
            )
            if self.mode == "insert" or not self.m.key_columns:
                return "stmt", self._update_in_place(ev.before, ev.after, lit)
            if key_changed:
                keys = ", ".join(quote_ident(c) for c in self.m.key_columns)
                return "stmt", [
                    f"DELETE FROM {self.table} WHERE ({keys}) IN ({self._key(ev.before, lit)})",
                    self._upsert_head + self._values(ev.after, lit) + self._upsert_tail,
                ]
        return "upsert", self._values(ev.after, lit)

    def _match(self, before: tuple[object, ...], lit: Literal) -> str:
        if self.m.key_columns:
            return " AND ".join(
                f"{quote_ident(c)} = {lit(before[i])}"
                for c, i in zip(self.m.key_columns, self.m.key_source_index, strict=True)
            )
        return " AND ".join(
            f"{quote_ident(c)} <=> {lit(before[i])}"
            for c, i in zip(self.m.target_columns, self.m.source_index, strict=True)
        )

    def _update_in_place(
        self, before: tuple[object, ...], after: tuple[object, ...], lit: Literal
    ) -> str:
        sets = ", ".join(
            f"{quote_ident(c)} = {lit(after[i])}"
            for c, i in zip(self.m.target_columns, self.m.source_index, strict=True)
        )
        limit = "" if self.m.key_columns else " LIMIT 1"
        return f"UPDATE {self.table} SET {sets} WHERE {self._match(before, lit)}{limit}"

    def _delete_whole_row(self, before: tuple[object, ...], lit: Literal) -> str:
        return f"DELETE FROM {self.table} WHERE {self._match(before, lit)} LIMIT 1"

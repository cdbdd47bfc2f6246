"""What every SQL table source shares, whatever its dialect: the resume key, how a table is
split into parts by ``splitPk``, the condition that selects one part, and a part's position
(how many rows it handed over, and the resume key of the last one).

A part id is JSON: ``{"i": 0, "n": 1}`` (the whole table), ``{"i", "n", "mod": true}``
(FlinkX's ``splitPk mod n = i``) or ``{"i", "n", "lo", "hi"}`` (a range of ``splitPk``).
NULL is in no range and no residue: the first part takes those rows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from coordinator.errors import ConfigError
from coordinator.mysql_client import column_by_name
from schemas import types
from schemas.events import Op, RowEvent
from schemas.row_binary import new_row_event, new_source_position
from schemas.table import TableSchema
from source_connectors.base import Source

WHOLE = json.dumps({"i": 0, "n": 1})


def resume_key(
    schema: TableSchema, restore_column: str | None, split_pk: str | None
) -> tuple[str, ...]:
    """Columns a part's query is ordered by, and resumes after: ``restoreColumnName`` or
    ``splitPk``, then the primary key's columns (when read) to tell apart rows that share a
    value — a NULL above all — else the primary key alone."""
    if restore_column:
        base: tuple[str, ...] = (
            column_by_name(schema.column_names, restore_column) or restore_column,
        )
    elif split_pk:
        base = (split_pk,)
    else:
        return schema.primary_key
    return base + tuple(k for k in schema.primary_key if k not in base)


def split_parts(
    channels: int,
    strategy: str,
    split_pk: str | None,
    bounds: Callable[[], tuple[Any, Any]],
) -> list[str]:
    """The part ids of a table read by ``channels`` readers; ``bounds()`` gives
    (MIN, MAX) of ``splitPk`` for the ``range`` strategy."""
    if not split_pk or channels == 1:
        return [WHOLE]
    if strategy == "mod":
        return [json.dumps({"i": i, "n": channels, "mod": True}) for i in range(channels)]
    lo, hi = bounds()
    if lo is None:
        return [WHOLE]
    lo, hi = int(lo), int(hi)
    step = max(1, -(-(hi - lo + 1) // channels))
    parts = []
    for i in range(channels):
        start = lo + i * step
        if start > hi:
            break
        parts.append(
            json.dumps({"i": i, "n": channels, "lo": start, "hi": min(hi, start + step - 1)})
        )
    return parts


def part_condition(
    part: dict[str, Any], split: str | None, nullable: bool
) -> tuple[list[str], list[Any]]:
    """The SQL condition (``%s`` parameters) that selects part ``part`` by the quoted split
    column ``split``."""
    if split is None:
        return [], []
    nulls = f" OR {split} IS NULL" if nullable and part["i"] == 0 else ""
    if part.get("mod"):
        n = part["n"]
        return [f"(MOD(MOD({split}, %s) + %s, %s) = %s{nulls})"], [n, n, n, part["i"]]
    if "lo" in part:
        return [f"({split} BETWEEN %s AND %s{nulls})"], [part["lo"], part["hi"]]
    return [], []


def key_text(value: Any) -> Any:
    """Resume-key values as JSON-safe scalars a driver can pass back as parameters."""
    if value is None or isinstance(value, int | float | str):
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


class PartPosition:
    """A part's position: rows handed over (``seq``) and the resume key of the last one.
    A key that does not tell rows apart cannot resume (source_connectors.resume): built
    with ``unique=False`` the part restarts from its first row."""

    def __init__(
        self, schema: TableSchema, key: tuple[str, ...], unique: bool, state: dict[str, str]
    ) -> None:
        self.schema = schema
        self.key = key if unique else ()
        self.key_idx = [schema.column_index[k] for k in self.key]
        self.seq = int(state.get("seq", 0))
        last = json.loads(state["last"]) if "last" in state and self.key else None
        self.last_key: list[Any] | None = last

    def events(self, rows: Sequence[Any], task: str, part_id: str) -> list[RowEvent]:
        """``rows`` (in key order) as SNAPSHOT events, the position moved past them."""
        now = int(time.time() * 1000)
        first = self.seq + 1
        schema = self.schema
        events = [
            new_row_event(
                Op.SNAPSHOT,
                schema,
                None,
                row,
                new_source_position(task, part_id, None, None, None, None, None, seq),
                now,
            )
            for seq, row in enumerate(rows, first)
        ]
        self.seq = first + len(rows) - 1
        if self.key_idx:
            last = rows[-1]
            self.last_key = [key_text(last[i]) for i in self.key_idx]
        return events

    def state(self) -> dict[str, str]:
        state = {"seq": str(self.seq)}
        if self.last_key is not None:
            state["last"] = json.dumps(self.last_key)
        return state


class TableSource(Source):
    """A source reading one table (or query) in parts split by ``splitPk``: the dialect's
    subclass checks it (setting ``_schema``, ``split_pk``, ``key_unique``) and says how to
    find ``splitPk``'s bounds."""

    path: str
    _schema: TableSchema | None = None
    split_pk: str | None = None
    """``splitPk`` in the table's own spelling (``check``)."""
    split_nullable = False
    key_unique = True
    """Whether the resume key tells rows apart (``check`` finds out)."""

    @property
    def table_schema(self) -> TableSchema:
        """The table read, as :meth:`check` found it."""
        if self._schema is None:
            self.check()
        assert self._schema is not None
        return self._schema

    def tables(self) -> list[TableSchema]:
        return [self._schema] if self._schema else []

    def resume_key(self) -> tuple[str, ...]:
        """See :func:`resume_key`."""
        assert self._schema is not None, "check() first"
        return resume_key(self._schema, self.context.restore_column, self.split_pk)

    def split_bounds(self) -> tuple[Any, Any]:
        """(MIN, MAX) of ``splitPk`` over the rows read."""
        raise NotImplementedError

    def _check_split_pk(self, table: TableSchema) -> None:
        """``splitPk`` names an integer column of ``table``: remember its spelling."""
        name = self.config.splitPk
        assert name is not None
        where = f"{self.path}.splitPk"
        real = column_by_name(table.column_names, name)
        if real is None:
            raise ConfigError(
                f"{where}: column {name!r} does not exist in table {table.qualified_name}"
            )
        col = table.column(real)
        if col.logical.kind != types.INT:
            raise ConfigError(
                f"{where}: column {name!r} of {table.qualified_name} is {col.column_type}; "
                "splitPk must be an integer column"
            )
        self.split_pk = real
        self.split_nullable = col.nullable

    def list_parts(self) -> list[str]:
        n = self.context.reader_channels
        return split_parts(n, self.config.splitStrategy, self.split_pk, self.split_bounds)

"""Straight-line Python for one table's row values: the inner loop of :mod:`schemas.row_binary`.

A generic loop over per-column closures costs two or three Python calls per value (the
union wrapper, the value codec, the loop itself); at six columns that was half of a reader's
and a writer's time. For each table schema the codec instead compiles one function that
unpacks the row into locals and spells out every column's union tag, null test and varint
fast path inline, calling out only for the value types that need real work (decimals,
dates). The generated code writes and reads exactly the bytes of the closures it replaces;
the unit tests compare both with fastavro.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

Encoder = Callable[[Any], bytes]
Decoder = Callable[[bytes, int], tuple[Any, int]]


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    """What the compiler needs of a column: its value codec and its union shape."""

    encode: Encoder
    decode: Decoder
    nullable: bool
    string_branch: bool
    """DATE/DATETIME/TIMESTAMP: a third ``string`` branch carries zero dates."""
    kind: str = ""
    """``long``, ``string`` or ``bytes`` to inline the value's decoding, else ``""``."""


def compile_encoder(specs: Sequence[ColumnSpec], helpers: dict[str, Any]) -> Encoder:
    """``values`` (a tuple of exactly ``len(specs)``) → the record's Avro bytes."""
    if not specs:
        return lambda values: b""
    ns: dict[str, Any] = dict(helpers)
    parts = []
    for i, spec in enumerate(specs):
        v = f"v{i}"
        ns[f"e{i}"] = spec.encode
        first = 1 if spec.nullable else 0
        ns[f"t{i}"] = bytes((2 * first,))
        ns[f"s{i}"] = bytes((2 * first + 2,))
        if not spec.nullable and not spec.string_branch:
            parts.append(f"e{i}({v})")
            continue
        expr = f"t{i} + e{i}({v})"
        if spec.string_branch:
            expr = f"(s{i} + write_string({v}) if isinstance({v}, str) else {expr})"
        if spec.nullable:
            expr = f"(_NULL if {v} is None else {expr})"
        parts.append(expr)
    names = ", ".join(f"v{i}" for i in range(len(specs)))
    body = ",\n        ".join(parts)
    source = f"def encode(values):\n    {names}, = values\n    return b''.join((\n        {body},\n    ))\n"
    exec(compile(source, "<row encoder>", "exec"), ns)  # noqa: S102 - our own code, no input
    result: Encoder = ns["encode"]
    return result


def _value_lines(spec: ColumnSpec, i: int) -> list[str]:
    """Decode column i's value starting at ``pos``; leaves it in ``v<i>``, ``pos`` after it."""
    v = f"v{i}"
    if spec.kind == "long":
        return [
            "b = data[pos]",
            "if b < 0x80:",
            f"    {v} = (b >> 1) ^ -(b & 1)",
            "    pos += 1",
            "else:",
            f"    {v}, pos = read_long(data, pos)",
        ]
    if spec.kind in ("string", "bytes"):
        decode = ".decode()" if spec.kind == "string" else ""
        reader = "read_string" if spec.kind == "string" else "read_bytes"
        return [
            "b = data[pos]",
            "if not b & 0x81:  # one-byte length, not negative",
            "    end = pos + 1 + (b >> 1)",
            f"    {v} = data[pos + 1:end]{decode}",
            "    pos = end",
            "else:",
            f"    {v}, pos = {reader}(data, pos)",
        ]
    return [f"{v}, pos = d{i}(data, pos)"]


def compile_decoder(
    specs: Sequence[ColumnSpec], helpers: dict[str, Any]
) -> Callable[[bytes, int], tuple[tuple[Any, ...], int]]:
    """``(data, pos)`` → (the row's values as a tuple, the position after them)."""
    ns: dict[str, Any] = dict(helpers)
    lines = ["def decode(data, pos):"]
    for i, spec in enumerate(specs):
        ns[f"d{i}"] = spec.decode
        value = _value_lines(spec, i)
        if not spec.nullable and not spec.string_branch:
            lines += ["    " + line for line in value]
            continue
        first = 1 if spec.nullable else 0
        lines += ["    b = data[pos]"]
        branches = []
        if spec.nullable:
            branches.append((0, [f"v{i} = None", "pos += 1"]))
        branches.append((2 * first, ["pos += 1", *value]))
        if spec.string_branch:
            branches.append((2 * first + 2, [f"v{i}, pos = read_string(data, pos + 1)"]))
        for n, (tag, body) in enumerate(branches):
            lines.append(f"    {'if' if n == 0 else 'elif'} b == {tag}:")
            lines += ["        " + line for line in body]
        lines += ["    else:", "        raise ValueError(f'union branch {b >> 1} out of range')"]
    names = "".join(f"v{i}, " for i in range(len(specs)))
    lines.append(f"    return ({names}), pos")
    exec(compile("\n".join(lines) + "\n", "<row decoder>", "exec"), ns)  # noqa: S102
    result: Callable[[bytes, int], tuple[tuple[Any, ...], int]] = ns["decode"]
    return result


def fast_constructor(cls: type) -> Callable[..., Any]:
    """A positional constructor for a frozen dataclass that fills the instance dict directly.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (its own
    ``__setattr__`` refuses): about a microsecond per event, per ``SourcePosition`` and
    ``RowEvent``, on every row a writer decodes. Classes with slots, ``__post_init__`` or
    defaults the caller might skip are served by the class itself.
    """
    fields = dataclasses.fields(cls)
    if "__slots__" in cls.__dict__ or hasattr(cls, "__post_init__"):
        return cls
    names = [f.name for f in fields]
    args = ", ".join(names)
    body = "\n".join(f"    d[{n!r}] = {n}" for n in names)
    source = f"def make({args}):\n    o = new(cls)\n    d = o.__dict__\n{body}\n    return o\n"
    ns: dict[str, Any] = {"new": object.__new__, "cls": cls}
    exec(compile(source, f"<{cls.__name__} constructor>", "exec"), ns)  # noqa: S102
    make: Callable[..., Any] = ns["make"]
    return make

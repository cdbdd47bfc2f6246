"""JSON as FlinkX users write it: ``//`` and ``/* */`` comments and trailing commas.

FlinkX's own examples comment out keys (``//  "channel": 1,``), so a strict JSON parser
would refuse the very jobs Sluice means to run. Comments and trailing commas are blanked out
(replaced by spaces, newlines kept) before :func:`json.loads`, so the line and column of any
remaining error still point into the user's file. Nothing inside a string is touched: a
``jdbc:mysql://host`` URL keeps its ``//``.

Objects and lists nested deeper than :data:`MAX_DEPTH` are refused while scanning, before
:func:`json.loads` (whose recursion would end in a ``RecursionError``) ever sees them.
"""

from __future__ import annotations

import json
from typing import Any

from coordinator.job.problems import JobConfigError

MAX_DEPTH = 64
"""Deepest nesting of objects and lists accepted. A FlinkX job nests about 8 levels; 64
leaves room for any real document and stays far from Python's recursion limit in the JSON
parser, the validation and the REST answers."""

# json's messages, reworded to say what was expected.
_JSON_MESSAGES = {
    "Expecting value": "expected a value (string, number, object, list, true, false or null)",
    "Expecting property name enclosed in double quotes": "expected a key in double quotes",
    "Expecting ',' delimiter": "expected ',' between items, or a closing '}' or ']'",
    "Expecting ':' delimiter": "expected ':' after the key",
    "Unterminated string starting at": "unterminated string: expected a closing '\"'",
    "Invalid control character at": "expected no raw line break or tab inside a string "
    "(write \\n or \\t)",
    "Extra data": "expected nothing after the end of the top-level object",
    "Invalid \\escape": "invalid escape in a string (write \\\\ for a backslash)",
}


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _blank(chars: list[str], start: int, end: int) -> None:
    for i in range(start, end):
        if chars[i] not in "\r\n":
            chars[i] = " "


def strip_comments_and_trailing_commas(text: str, origin: str = "<job>") -> str:
    """``text`` with comments and trailing commas replaced by spaces (same length, same
    line breaks). Raises :class:`JobConfigError` for a block comment that never ends."""
    chars = list(text)
    n = len(chars)
    i = 0
    last_comma = -1  # position of a ',' that may turn out to be trailing
    depth = 0
    while i < n:
        c = chars[i]
        if c == '"':
            last_comma = -1
            i += 1
            while i < n and chars[i] != '"':
                i += 2 if chars[i] == "\\" else 1
            i += 1
            continue
        if c == "/" and i + 1 < n and chars[i + 1] == "/":
            end = text.find("\n", i)
            end = n if end < 0 else end
            _blank(chars, i, end)
            i = end
            continue
        if c == "/" and i + 1 < n and chars[i + 1] == "*":
            end = text.find("*/", i + 2)
            if end < 0:
                line, col = _line_col(text, i)
                raise JobConfigError(
                    origin,
                    ["invalid JSON: comment opened with '/*' is never closed by '*/'"],
                    location=f"{origin}:{line}:{col}",
                )
            _blank(chars, i, end + 2)
            i = end + 2
            continue
        if c == ",":
            last_comma = i
        elif c in "}]":
            depth -= 1
            if last_comma >= 0:
                chars[last_comma] = " "
            last_comma = -1
        elif c in "{[":
            depth += 1
            last_comma = -1
            if depth > MAX_DEPTH:
                line, col = _line_col(text, i)
                raise JobConfigError(
                    origin,
                    [f"invalid JSON: nested deeper than {MAX_DEPTH} levels of objects and lists"],
                    location=f"{origin}:{line}:{col}",
                )
        elif not c.isspace():
            last_comma = -1
        i += 1
    return "".join(chars)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_jsonc(text: str, origin: str = "<job>") -> Any:
    """Parse ``text`` (JSON with comments and trailing commas). Malformed input raises
    :class:`JobConfigError` whose one-line message is ``origin:line:col: invalid JSON: ...``."""
    if text.startswith("\ufeff"):  # a BOM, as Windows editors write; keep the columns
        text = " " + text[1:]
    if not text.strip():
        raise JobConfigError(origin, ['the file is empty; expected a JSON object {"job": {...}}'])
    cleaned = strip_comments_and_trailing_commas(text, origin)
    if not cleaned.strip():
        raise JobConfigError(
            origin, ['the file holds only comments; expected a JSON object {"job": {...}}']
        )
    try:
        return json.loads(cleaned, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        message = _JSON_MESSAGES.get(e.msg, e.msg[:1].lower() + e.msg[1:])
        raise JobConfigError(
            origin, [f"invalid JSON: {message}"], location=f"{origin}:{e.lineno}:{e.colno}"
        ) from None
    except ValueError as e:  # NaN / Infinity
        raise JobConfigError(origin, [f"invalid JSON: {e}"]) from None

"""Turning what is wrong with a job into messages that name the JSON path.

Users know their job as FlinkX JSON, so every message starts with the path of the offending
key exactly as they would walk it (``job.content[0].reader.parameter.connection[0].jdbcUrl[0]``)
and then says what was expected and what was found. Pydantic's own wording, error URLs and
input echoes are not shown: inputs appear only as scalars, never for password keys.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from coordinator.errors import ConfigError
from coordinator.job.base import TAG_PREFIX, FlinkxModel, shown

_SECRET_WORDS = ("password", "secret", "token")

JOB_NAME_MAX = 100
"""Longest job name: with ``kafka.topicPrefix`` (<= 100) and a run id (18) the longest topic
name (``<prefix>.<job>.<run>.control``) stays under Kafka's 249 characters, and the name fits
the MySQL sink's ``_sluice_offsets.job`` VARCHAR(190). It is also where names used to be cut,
so every name that ran before keeps its topics."""
_JOB_NAME = re.compile(r"[A-Za-z0-9._-]+")


def job_name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a job (or worker group) name, or None.

    The name is used as is in topic names, consumer groups, transactional ids and status
    keys, so it is limited to the characters Kafka topic names allow; anything else would
    have to be rewritten, and two names (``a/b`` and ``a_b``) would share one topic."""
    if not _JOB_NAME.fullmatch(name):
        bad = sorted({c for c in name if not _JOB_NAME.fullmatch(c)})
        shown_bad = " ".join(repr(c) for c in bad[:5])
        return (
            f"{name!r} has characters a Kafka topic name cannot hold ({shown_bad}); "
            "use only letters, digits, '.', '_' and '-'"
        )
    if len(name) > JOB_NAME_MAX:
        return (
            f"{len(name)} characters, at most {JOB_NAME_MAX}: the name goes into Kafka topic "
            "names (at most 249 characters with the topic prefix and run id)"
        )
    return None


class JobConfigError(ConfigError):
    """The job is invalid. ``problems`` lists every problem found, one line each; the
    message's first line is the first problem (plus a count of the rest), so it stands alone
    as a summary, and the rest follow on their own lines."""

    def __init__(self, origin: str, problems: Sequence[str], *, location: str | None = None):
        self.origin = origin
        self.problems = list(problems) or ["invalid job"]
        first = f"{location or origin}: {self.problems[0]}"
        rest = self.problems[1:]
        if rest:
            first += f" (and {len(rest)} more problem{'s' if len(rest) > 1 else ''} below)"
        super().__init__("\n".join([first, *("  " + p for p in rest)]))


def join_path(prefix: str, key: str | int) -> str:
    """``job.content`` + 0 -> ``job.content[0]``; ``job`` + ``setting`` -> ``job.setting``."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def is_secret_path(path: str) -> bool:
    last = path.rsplit(".", 1)[-1].lower()
    return any(word in last for word in _SECRET_WORDS)


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` was most likely meant to be (case-insensitive), if any."""
    by_lower = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.7)
    return by_lower[match[0]] if match else None


def unknown_key_message(path: str, key: str, known: Iterable[str]) -> str:
    hint = closest(key, known)
    return f"{join_path(path, key)}: unknown key, ignored" + (
        f" (did you mean {hint}?)" if hint else ""
    )


def unknown_key_warnings(node: object, path: str) -> list[str]:
    """Warnings for every key set aside by a :class:`FlinkxModel` in ``node``'s tree."""
    out: list[str] = []
    if isinstance(node, FlinkxModel):
        known = type(node).known_keys()
        out.extend(unknown_key_message(path, key, known) for key in node.unknown_keys)
        for name, info in type(node).model_fields.items():
            out.extend(
                unknown_key_warnings(getattr(node, name), join_path(path, info.alias or name))
            )
    elif isinstance(node, list | tuple):
        for i, item in enumerate(node):
            out.extend(unknown_key_warnings(item, join_path(path, i)))
    elif isinstance(node, dict):
        for key, item in node.items():
            out.extend(unknown_key_warnings(item, join_path(path, str(key))))
    return out


def _locate(loc: tuple[int | str, ...], raw: object, prefix: str, missing: bool) -> str:
    """The JSON path of pydantic's ``loc``, walked along the raw input: elements that are not
    in the input (union branch tags; list positions made by turning ``"x"`` into ``["x"]``)
    are left out, so the path is always one the user can find in their file."""
    path, node = prefix, raw
    for i, el in enumerate(loc):
        if isinstance(el, str) and el.startswith(TAG_PREFIX):
            continue
        in_dict = isinstance(node, dict) and isinstance(el, str) and el in node
        in_list = isinstance(node, list) and isinstance(el, int) and 0 <= el < len(node)
        if in_dict or in_list:
            path, node = join_path(path, el), node[el]  # type: ignore[index]
        elif missing and i == len(loc) - 1 and isinstance(el, str):
            path = join_path(path, el)
        else:
            break  # the rest describes a shape the user did not write
    return path


def _plural(n: Any, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# pydantic error type -> what was expected, for "expected X, got Y" messages.
_EXPECTED: dict[str, str] = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "none_required": "null",
}
_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}


def _describe(err: Any, path: str) -> tuple[str | None, str]:
    """(what was expected or None, full message) for one pydantic error."""
    kind: str = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
    value = err.get("input")
    got = "" if is_secret_path(path) else f", got {shown(value)}"
    if kind == "missing":
        return None, "required key is missing"
    if kind in ("value_error", "assertion_error"):
        return None, str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
    if kind in _EXPECTED:
        return _EXPECTED[kind], f"expected {_EXPECTED[kind]}{got}"
    if kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        expected = f"a number {op} {ctx.get(key)}"
        return expected, f"expected {expected}{got}"
    if kind == "too_short":
        n = ctx.get("actual_length", 0)
        return None, f"expected at least {_plural(ctx.get('min_length'), 'item')}, got {n}"
    if kind == "too_long":
        n = ctx.get("actual_length", "more")
        return None, f"expected at most {_plural(ctx.get('max_length'), 'item')}, got {n}"
    if kind == "string_too_short":
        return None, "must not be empty"
    if kind == "string_pattern_mismatch":
        return None, f"expected a string matching {ctx.get('pattern')}{got}"
    if kind in ("literal_error", "enum"):
        expected = f"one of {ctx.get('expected')}"
        return expected, f"expected {expected}{got}"
    msg = str(err["msg"])
    return None, msg[:1].lower() + msg[1:]


def validation_problems(exc: ValidationError, raw: object, prefix: str) -> list[str]:
    """One ``path: message`` line per problem in ``exc``, raised validating ``raw`` at
    ``prefix``. Alternatives of one union at one path merge into "expected A or B"."""
    order: list[str] = []
    expected: dict[str, list[str]] = {}
    messages: dict[str, list[str]] = {}
    inputs: dict[str, object] = {}
    for err in exc.errors(include_url=False):
        path = _locate(tuple(err["loc"]), raw, prefix, err["type"] == "missing")
        if path not in order:
            order.append(path)
        what, message = _describe(err, path)
        if what is not None:
            expected.setdefault(path, []).append(what)
            inputs[path] = err.get("input")
        elif message not in messages.setdefault(path, []):
            messages[path].append(message)
    out: list[str] = []
    for path in order:
        whats = list(dict.fromkeys(expected.get(path, [])))
        if whats:
            got = "" if is_secret_path(path) else f", got {shown(inputs[path])}"
            out.append(f"{path}: expected {' or '.join(whats)}{got}")
        out.extend(f"{path}: {m}" for m in messages.get(path, []))
    return out


def validate_at(
    model: type[BaseModel], raw: object, path: str, errors: list[str], warnings: list[str]
) -> Any:
    """Validate ``raw`` (found at JSON ``path``) as ``model``; on failure add the problems to
    ``errors`` and return None. Unknown keys go to ``warnings``."""
    try:
        value = model.model_validate(raw)
    except ValidationError as e:
        errors.extend(validation_problems(e, raw, path))
        return None
    warnings.extend(unknown_key_warnings(value, path))
    return value

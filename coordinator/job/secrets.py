"""Secrets by reference: ``${env:NAME}`` and ``${file:PATH:KEY}`` anywhere in a job's strings,
Kafka Connect's config-provider syntax (``EnvVarConfigProvider``, ``FileConfigProvider``).

A job is stored and shown as written — with its references: ``sluice-configs``, the REST
API and ``sluice status`` never hold a value. :func:`resolve` replaces them in the process
that builds the job to run it (``sluice run``, the worker that owns it), reading that
process's environment and files. ``${file:PATH:KEY}`` reads ``KEY`` from the Java properties
file ``PATH`` (``key=value`` lines, as Connect's provider does); the last ``:`` splits
``PATH`` from ``KEY``. A variable that is not set, a file that cannot be read or a key it
does not have is one error naming the JSON path.
"""

from __future__ import annotations

import os
import re
from typing import Any

import javaproperties

REFERENCE = re.compile(r"\$\{(env|file):([^}]*)\}")


def has_references(doc: Any) -> bool:
    if isinstance(doc, str):
        return REFERENCE.search(doc) is not None
    if isinstance(doc, dict):
        return any(has_references(v) for v in doc.values())
    if isinstance(doc, list):
        return any(has_references(v) for v in doc)
    return False


def resolve(doc: Any, path: str = "") -> tuple[Any, list[str]]:
    """``doc`` with every reference replaced, and the problems found (``path: what``)."""
    problems: list[str] = []
    files: dict[str, dict[str, str] | str] = {}

    def value_of(kind: str, body: str, where: str) -> str | None:
        if kind == "env":
            value = os.environ.get(body)
            if value is None:
                problems.append(f"{where}: environment variable {body!r} is not set "
                                f"(${{env:{body}}})")  # fmt: skip
            return value
        file, sep, key = body.rpartition(":")
        if not sep or not file or not key:
            problems.append(f"{where}: ${{file:{body}}} should be ${{file:PATH:KEY}}")
            return None
        if file not in files:
            try:
                with open(file, encoding="utf-8") as f:
                    files[file] = javaproperties.load(f)
            except OSError as e:
                files[file] = f"cannot read {file}: {e.strerror or e}"
        props = files[file]
        if isinstance(props, str):
            problems.append(f"{where}: {props}")
            return None
        if key not in props:
            problems.append(f"{where}: {file} has no key {key!r}")
            return None
        return props[key]

    def walk(node: Any, where: str) -> Any:
        if isinstance(node, str):

            def sub(m: re.Match[str]) -> str:
                value = value_of(m.group(1), m.group(2), where)
                return m.group(0) if value is None else value

            return REFERENCE.sub(sub, node)
        if isinstance(node, dict):
            return {k: walk(v, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(node)]
        return node

    return walk(doc, path), problems

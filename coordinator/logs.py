"""Logging of a job run, FlinkX's ``setting.log``: level, an optional job log file
(``isLogger``, ``path``, a log4j ``pattern``) and, as a Sluice addition, JSON lines.

Every handler's output goes through :class:`RedactingFormatter`, which replaces the job's
passwords wherever they appear (a message, an argument, a traceback): a password can reach a
log line in ways no code review sees (a driver's exception text, a ``repr``), so the last
step before the line is written is where it is caught.

The runner and each task process call :func:`configure_logging` with the same job, so all of
them write the same format to the same places (the file is opened for appending: lines of
different processes interleave but never overwrite each other).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, SecretStr

from coordinator.jdbc import redact_url

# FlinkX's default directory for job log files (isLogger without path).
DEFAULT_LOG_DIR = "/tmp/dtstack/flinkx"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# log4j/logback conversion words → logging's record attributes. What is not here is kept
# as literal text (e.g. %X{...}).
_LOG4J = {
    "d": "%(asctime)s",
    "date": "%(asctime)s",
    "p": "%(levelname)s",
    "level": "%(levelname)s",
    "c": "%(name)s",
    "logger": "%(name)s",
    "C": "%(module)s",
    "m": "%(message)s",
    "msg": "%(message)s",
    "message": "%(message)s",
    "t": "%(threadName)s",
    "thread": "%(threadName)s",
    "L": "%(lineno)d",
    "M": "%(funcName)s",
    "F": "%(filename)s",
    "r": "%(relativeCreated)d",
    "pid": "%(process)d",
}
_LOG4J_RE = re.compile(r"%(-?\d+(?:\.\d+)?)?([a-zA-Z]+)(\{[^}]*\})?|%%|%n")


def log4j_to_logging(pattern: str) -> str:
    """``%d{yyyy-MM-dd HH:mm:ss} %-5p %c - %m%n`` → a :mod:`logging` format string."""
    out: list[str] = []
    last = 0
    for m in _LOG4J_RE.finditer(pattern):
        out.append(pattern[last : m.start()].replace("%", "%%"))
        last = m.end()
        text = m.group(0)
        if text == "%%":
            out.append("%%")
        elif text == "%n":
            pass  # logging ends every record with a newline itself
        elif (target := _LOG4J.get(m.group(2))) is None:
            out.append(text.replace("%", "%%"))  # unknown conversion: keep it as text
        else:
            out.append(_width(target, m.group(1)) if m.group(1) else target)
    out.append(pattern[last:].replace("%", "%%"))
    return "".join(out)


def _width(target: str, width: str) -> str:
    # "%(levelname)s" with log4j's "-5" → "%(levelname)-5s" (the same padding rule)
    name_end = target.index(")") + 1
    return f"{target[:name_end]}{width.split('.')[0]}{target[name_end:]}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO 8601, UTC), level, logger, message, process, and
    the job/task it belongs to; ``exc`` holds a traceback when there is one."""

    def __init__(self, job: str = "", task: str = "") -> None:
        super().__init__()
        self.job = job
        self.task = task

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if self.job:
            out["job"] = self.job
        if self.task:
            out["task"] = self.task
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class RedactingFormatter(logging.Formatter):
    """Wraps a formatter; every secret in its output becomes ``***`` and URLs lose their
    password options."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self.inner = inner
        self.secrets = Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return self.secrets(self.inner.format(record))


class Redactor:
    """``redactor(text)``: the text with every secret replaced by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
            if len(s) >= 4:
                # JSON escaping could spell it differently in a JSON log line.
                escaped = json.dumps(s, ensure_ascii=False)[1:-1]
                if escaped != s:
                    text = text.replace(escaped, "***")
        return redact_url(text) if "://" in text else text


def job_secrets(job: Any) -> list[str]:
    """Every password (``SecretStr``) anywhere in the job's reader, writer and setting."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name, None))
            for extra in (value.model_extra or {}).values():
                walk(extra)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    for content in getattr(job, "content", ()):
        walk(content.reader.config)
        walk(content.writer.config)
    walk(getattr(job, "setting", None))
    return [s for s in found if s]


def log_file_path(log_setting: Any, job_name: str) -> str:
    """``<path>/<job>.log`` (FlinkX writes one file per job into ``path``)."""
    from coordinator.plan import safe_name

    return os.path.join(log_setting.path or DEFAULT_LOG_DIR, f"{safe_name(job_name)}.log")


def configure_logging(
    job: Any | None, *, level: int | None = None, task: str = "", verbose: bool = False
) -> None:
    """(Re)configure the root logger for ``job``'s ``setting.log``: stderr always, the job's
    log file with ``isLogger``; text (``pattern``) or JSON lines; passwords redacted.

    ``level`` (a task process inherits its runner's) wins over ``setting.log.level``, and
    ``verbose`` (``sluice -v``) over both."""
    setting = job.setting.log if job is not None else None
    if verbose:
        level = logging.DEBUG
    elif level is None:
        level = setting.python_level if setting is not None else logging.INFO
    secrets = job_secrets(job) if job is not None else []
    name = job.name if job is not None else ""
    if setting is not None and setting.is_json:
        inner: logging.Formatter = JsonFormatter(job=name, task=task)
    elif setting is not None and setting.pattern:
        inner = logging.Formatter(log4j_to_logging(setting.pattern))
    else:
        inner = logging.Formatter(TEXT_FORMAT)
    formatter = RedactingFormatter(inner, secrets)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if setting is not None and setting.is_logger:
        path = log_file_path(setting, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="a", encoding="utf-8"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in handlers:
        h.setFormatter(formatter)
        root.addHandler(h)
    root.setLevel(level)

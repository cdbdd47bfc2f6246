"""What a job run *is*, so that resuming it with an edited job can be refused.

A run's positions, parts, data topic and writer group only mean something for the job that
started it: resuming run R of table ``r`` with a job that now names table ``t`` would read
``t`` from ``r``'s positions and silently skip rows. So when a run starts, its *identity* —
the parts of the job that decide which rows go where (source server, database, tables,
columns, filters, split key, channels, incremental column, sink server, table, write mode) —
is stored with it (``sluice-status`` for ``sluice run``, ``sluice-configs`` for a worker
job). Resuming compares the job at hand with it, in one function used by both paths.

Everything not listed as harmless counts, so a new connector key is safe by default; the
harmless ones are the keys that only change *how fast* or *how verbosely* the same rows move:
rate limits, logs, ``errorLimit``, the checkpoint interval, credentials, fetch/batch sizes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlsplit

from coordinator.errors import ConfigError

HARMLESS_PARAMETERS = frozenset(
    {
        "username",
        "password",
        "fetchSize",
        "batchSize",
        "queryTimeOut",
        "requestAccumulatorInterval",
        "heartbeatInterval",
        "pollingInterval",
        "session",
        # Run once per fresh run only: they never act on a resumed one.
        "preSql",
        "postSql",
    }
)


class RunChanged(ConfigError):
    """The job no longer describes the run it would resume. ``path`` is the JSON path."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def _canonical_url(value: Any) -> Any:
    # jdbc:mysql://host:port/db?useUnicode=...: the server and database matter, the
    # driver options do not.
    if isinstance(value, str) and value.startswith("jdbc:"):
        u = urlsplit(value[len("jdbc:") :])
        return f"{u.scheme}://{(u.hostname or '').lower()}:{u.port or ''}{u.path}"
    return value


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in HARMLESS_PARAMETERS:
                _flatten(f"{prefix}.{key}", item, out)
    elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
        for i, item in enumerate(value):
            _flatten(f"{prefix}[{i}]", item, out)
    elif isinstance(value, list):
        out[prefix] = [_canonical_url(v) for v in value]
    else:
        out[prefix] = _canonical_url(value)


def run_identity(job: Any) -> dict[str, Any]:
    """JSON path → value, for every identity-bearing part of ``job`` (a validated Job)."""
    out: dict[str, Any] = {}
    for side in (job.content[0].reader, job.content[0].writer):
        out[f"{side.path}.name"] = side.name
        _flatten(f"{side.path}.parameter", side.config.model_dump(mode="json"), out)
    s = job.setting
    out["job.setting.speed.readerChannel"] = s.speed.reader_channel or s.speed.channel
    out["job.setting.speed.writerChannel"] = s.speed.writer_channels
    out["job.setting.restore.restoreColumnName"] = s.restore.restore_column_name
    out["job.setting.restore.restoreColumnIndex"] = s.restore.restore_column_index
    out["job.setting.delivery"] = s.delivery
    out["job.setting.kafka.topicPrefix"] = s.kafka.topic_prefix
    out["job.setting.kafka.partitions"] = s.kafka.partitions
    return out


def fingerprint(identity: dict[str, Any]) -> str:
    """A short digest of the canonical JSON of an identity."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def identity_record(job: Any) -> dict[str, Any]:
    """What a run stores when it starts: ``{"fingerprint": ..., "identity": {...}}``."""
    identity = run_identity(job)
    return {"fingerprint": fingerprint(identity), "identity": identity}


def _shown(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return json.dumps(value)


RESTART_ADVICE = "run without restore.isRestore to start over, or restore the job as it was"


def check_resumable(
    job: Any, run_id: str, stored: dict[str, Any] | None, advice: str = RESTART_ADVICE
) -> None:
    """Raise :class:`RunChanged` naming the first identity-bearing field of ``job`` that
    differs from what run ``run_id`` stored when it started. A run stored before identities
    were kept (``stored`` without one) is resumed as before."""
    if not stored or not isinstance(stored.get("identity"), dict):
        return
    then: dict[str, Any] = stored["identity"]
    now = run_identity(job)
    if fingerprint(now) == stored.get("fingerprint") and now == then:
        return
    for path in sorted(set(then) | set(now)):
        if then.get(path) != now.get(path):
            side = "reader" if ".reader." in path else "writer" if ".writer." in path else ""
            what = " ".join(filter(None, (side, path.rsplit(".", 1)[-1].split("[")[0])))
            raise RunChanged(
                f"job {job.name}: cannot resume run {run_id}: {what} changed from "
                f"{_shown(then.get(path))} to {_shown(now.get(path))} ({path}); {advice}",
                path,
            )

"""The oracle: what the target must hold after a job, computed from the source and the job
alone, and THE invariant of issue 14:

    either the target equals what the job describes,
    or the run failed with one line naming a JSON path or position and the target is untouched.

``where`` is evaluated by MariaDB itself on the source (the oracle never re-implements SQL);
column selection, ``preSql`` and ``writeMode`` are applied here, in Python, to the rows the
target held before the run. Rows are compared as multisets of whole rows (a keyless target
can hold duplicates), and a difference is reported Kafka-EOS style: which ids are missing,
which are extra, which came with other values.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pymysql

from tests.differential.model import Case, Job, Row, Table


def select_rows(
    conn: pymysql.connections.Connection, db: str, table: Table, name: str, where: str | None = None
) -> list[Row]:
    cols = ", ".join(c.q for c in table.columns)
    sql = f"SELECT {cols} FROM `{db}`.`{name}`" + (f" WHERE {where}" if where else "")
    with conn.cursor() as cur:
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]


def checksum(conn: pymysql.connections.Connection, db: str, name: str) -> tuple[int, int]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{db}`.`{name}`")
        (count,) = cur.fetchone()
        cur.execute(f"CHECKSUM TABLE `{db}`.`{name}`")
        (_n, value) = cur.fetchone()
    return int(count), int(value or 0)


_DELETE_BELOW = re.compile(r"DELETE FROM dst WHERE id < (-?\d+)$")


def after_pre_sql(rows: list[Row], job: Job) -> list[Row] | None:
    """The target's rows once ``preSql`` ran; None: it cannot run (the job must fail)."""
    for sql in job.pre_sql:
        if sql == "DELETE FROM dst":
            rows = []
        elif m := _DELETE_BELOW.match(sql):
            rows = [r for r in rows if r[0] is None or r[0] >= int(m.group(1))]
        else:
            return None  # a statement that fails on the server (a missing table)
    return rows


def expected_target(
    conn: pymysql.connections.Connection, db: str, case: Case, before: list[Row]
) -> list[Row] | None:
    """The rows ``dst`` must hold once ``case.final_job()`` succeeded, given that it held
    ``before`` when the case started; None: no successful run can describe the job (it must
    be refused)."""
    job = case.final_job()
    table, target = case.table, case.target
    if job.write_mode in ("replace", "update") and target.key == "none":
        return None  # nothing to match a row on: REPLACE/UPDATE have no meaning
    rows = after_pre_sql(list(before), job)
    if rows is None:
        return None
    chosen = {c.lower() for c in job.columns} if job.columns else None
    keep = [chosen is None or c.name.lower() in chosen for c in table.columns]
    by_id: dict[Any, int] = {}
    if target.key != "none":
        by_id = {r[0]: i for i, r in enumerate(rows) if r[0] is not None}
    out: list[Row | None] = list(rows)
    for src in select_rows(conn, db, table, "src", job.where):
        new = tuple(v if k else None for v, k in zip(src, keep, strict=True))
        at = by_id.get(new[0]) if new[0] is not None else None
        if at is None:
            by_id[new[0]] = len(out)
            out.append(new)
        elif job.write_mode == "replace":
            out[at] = new  # REPLACE: the old row goes, columns not written are defaults
        elif job.write_mode == "update":
            old = out[at]
            assert old is not None
            out[at] = tuple(v if k else o for v, k, o in zip(new, keep, old, strict=True))
        else:
            return None  # a duplicate key under insert: the generator avoids it
    return [r for r in out if r is not None]


@dataclass
class Outcome:
    returncode: int | None
    """None: the run was still going at the case's timeout (and was killed)."""
    stderr: str
    killed_after: int | None = None
    """Rows in the target when the first run was SIGKILLed (None: no kill happened)."""


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("sluice: error:")]


def check(
    conn: pymysql.connections.Connection,
    db: str,
    case: Case,
    before: list[Row],
    before_last_run: tuple[int, int],
    outcome: Outcome,
) -> None:
    """Assert THE invariant; the message says which ids are missing/extra, or how the
    failure was not one clear line, or how the target was touched."""
    expected = expected_target(conn, db, case, before)
    actual = select_rows(conn, db, case.target, "dst")
    if outcome.returncode == 0:
        assert expected is not None, (
            "the run succeeded although no outcome can describe this job "
            f"(it should be refused); target holds {len(actual)} rows\n{describe(case)}"
        )
        diff = differences(expected, actual)
        assert not any(diff.values()), (
            f"target differs from what the job describes: {diff}\n{describe(case)}"
        )
        return
    assert outcome.returncode is not None, (
        f"the run did not end within {case.timeout} s\n{outcome.stderr[-1500:]}\n{describe(case)}"
    )
    lines = error_lines(outcome.stderr)
    assert not case.must_succeed, f"a valid job was refused: {lines}\n{describe(case)}"
    assert "Traceback" not in outcome.stderr, f"{outcome.stderr[-3000:]}\n{describe(case)}"
    assert len(lines) == 1, (
        f"a failed run must say one line, said {lines}: {outcome.stderr[-1500:]}\n{describe(case)}"
    )
    line = lines[0]
    assert names_a_place(line, case), f"the error names no JSON path nor place: {line}"
    now = checksum(conn, db, "dst")
    assert now == before_last_run, (
        f"the run failed ({line}) but touched the target: (count, checksum) "
        f"{before_last_run} -> {now}; {differences(before, actual)}\n{describe(case)}"
    )


_PLACE = re.compile(r"job\.(content|setting)|position|binlog|`?(src|dst)`?|column|table", re.I)


def names_a_place(line: str, case: Case) -> bool:
    if _PLACE.search(line):
        return True
    return any(c.name.lower() in line.lower() for c in case.table.columns)


def differences(expected: list[Row], actual: list[Row]) -> dict[str, list[Any]]:
    """Ids (first 20) of rows missing from the target, extra in it, and present with other
    values; a duplicated row shows as extra."""
    want, got = Counter(expected), Counter(actual)
    missing_rows, extra_rows = want - got, got - want
    missing_ids = Counter(r[0] for r in missing_rows.elements())
    extra_ids = Counter(r[0] for r in extra_rows.elements())
    changed = sorted((missing_ids & extra_ids).keys(), key=repr)
    return {
        "missing": sorted((missing_ids - extra_ids).elements(), key=repr)[:20],
        "extra": sorted((extra_ids - missing_ids).elements(), key=repr)[:20],
        "changed": changed[:20],
    }


def describe(case: Case) -> str:
    """The case in a few lines (a failing example's rows are also printed by hypothesis)."""
    t = case.table
    cols = ", ".join(f"{c.name} {c.sql}" for c in t.columns)
    return (
        f"case: source key={t.key} charset={t.charset} ({cols}); {len(case.rows)} rows; "
        f"target key={case.target_key}, {len(case.target_rows)} rows before; job={case.job}; "
        f"kill_after={case.kill_after}; edit={case.edit}"
    )

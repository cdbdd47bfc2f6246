"""Differential test of mysqlreader → Kafka → mysqlwriter (issue 14): hypothesis draws a
table, its rows, what the target held and a job; the runner plays it against the real
servers, SIGKILLing the run and resuming it with ``isRestore`` in some cases; the oracle
checks THE invariant (``oracle.py``). Each issue-14 item is also a fixed case below."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given

from tests.differential.budget import PROFILE
from tests.differential.model import ONE_MB, OPEN_ITEMS, Case, Column, Job, Table
from tests.differential.runner import run_case
from tests.differential.strategies import cases

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("differential")


@PROFILE
@given(case=cases())
def test_target_is_what_the_job_describes_or_one_line_and_untouched(
    case, mysql_url, kafka_bootstrap, workdir
):
    run_case(mysql_url, kafka_bootstrap, workdir, case)


# -- issue 14's items as fixed cases ------------------------------------------------------
ID, K = Column("id", "BIGINT", "int"), Column("k", "INT", "int")
NAME = Column("name", "VARCHAR(40)", "text")
AT = Column("at", "DATETIME(6)", "datetime")
AMOUNT = Column("amount", "DECIMAL(12,2)", "decimal")
PLAIN = Table((ID, K, NAME, AMOUNT), "primary")


def plain_rows(n: int, start: int = 1) -> tuple:
    return tuple(
        (i, None if i % 3 == 0 else i % 7, f"name-{i}", Decimal(i) / 4)
        for i in range(start, start + n)
    )


ITEMS = {
    1: (
        "resume after an edited job copies partially",
        Case(
            PLAIN,
            plain_rows(300),
            Job(rows_per_second=50),
            "primary",
            kill_after=40,
            edit=Job(rows_per_second=50, where="id % 2 = 0"),
        ),
    ),
    2: (
        "splitPk on a nullable column drops NULL rows with >= 2 channels",
        Case(PLAIN, plain_rows(30), Job(channel=2, split_pk="k"), "primary"),
    ),
    3: (
        "writeMode update/replace into a keyless target appends duplicates",
        Case(
            PLAIN,
            plain_rows(10),
            Job(write_mode="replace"),
            "none",
            target_rows=plain_rows(3),
        ),
    ),
    5: (
        "characterEncoding=latin1 on a reader URL turns 中文 into ??",
        Case(
            PLAIN,
            ((1, 1, "中文", Decimal("1.00")), (2, 2, "café", Decimal("2.00"))),
            Job(encoding="latin1"),
            "primary",
        ),
    ),
    6: (
        "a failing preSql leaves the target emptied",
        Case(
            PLAIN,
            plain_rows(5),
            Job(pre_sql=("DELETE FROM dst", "DELETE FROM nope")),
            "primary",
            target_rows=plain_rows(3, start=100),
        ),
    ),
    9: (
        "a 2 MB row is retried for minutes",
        Case(
            Table((ID, K, Column("payload", "LONGTEXT", "text")), "primary"),
            # 10 MB: over what the producer and broker take; a 2 MB row passes on this tree.
            ((1, 1, "x" * 10), (2, 2, "y" * (10 * ONE_MB)), (3, 3, "")),
            Job(),
            "primary",
            timeout=40,
        ),
    ),
    16: (
        "upper-case column names refused",
        Case(
            Table((ID, K, AT), "primary"),
            ((1, 1, dt.datetime(2020, 1, 1, 1, 2, 3, 4)), (2, None, None)),
            # The table says id, k, at; the job says ID, K, AT.
            Job(channel=2, split_pk="id", columns=("id", "k", "at"), upper_names=True),
            "primary",
            must_succeed=True,
        ),
    ),
}


def _item(n: int):
    reason, case = ITEMS[n]
    marks = []
    if n in OPEN_ITEMS:
        marks.append(
            pytest.mark.xfail(
                strict=True,
                reason=f"issue 14 item {n}: {reason} (fixed? remove {n} from "
                "OPEN_ITEMS in tests/differential/model.py)",
            )
        )
    return pytest.param(case, id=f"item{n}", marks=marks)


@pytest.mark.parametrize("case", [_item(n) for n in sorted(ITEMS)])
def test_issue_14_item(case, mysql_url, kafka_bootstrap, workdir):
    run_case(mysql_url, kafka_bootstrap, workdir, case)


def test_oracle_catches_a_dropped_row(mysql_url, kafka_bootstrap, workdir):
    """The oracle broken on purpose: the job really runs with ``where: id <> 2`` but the
    oracle is told there is no ``where``; the invariant must name id 2 as missing."""
    from dataclasses import replace

    from tests.differential.runner import CaseRun

    told = Case(PLAIN, plain_rows(6), Job(), "primary")
    run = CaseRun(mysql_url, kafka_bootstrap, workdir, replace(told, job=Job(where="id <> 2")))
    try:
        outcome = run.play()
        assert outcome.returncode == 0, outcome.stderr[-1000:]
        run.case = told
        with pytest.raises(AssertionError, match=r"'missing': \[2\], 'extra': \[\]"):
            run.check(outcome)
    finally:
        run.close()

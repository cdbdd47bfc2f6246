"""bench.sysbench_stats: sysbench's report, /metrics text and the "lag bounded" decision."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.sysbench_stats import lag_trend, parse_metrics, parse_sysbench

# sysbench 1.0.20's own output (oltp_write_only, 4 threads, 5 s) on this machine.
SYSBENCH_OUTPUT = """\
Threads started!

[ 2s ] thds: 4 tps: 5336.28 qps: 32125.84 (r/w/o: 0.00/21409.32/10716.52) lat (ms,95%): 1.39 err/s: 41.99 reconn/s: 0.00
[ 4s ] thds: 4 tps: 7142.09 qps: 43018.97 (r/w/o: 0.00/28667.01/14351.97) lat (ms,95%): 1.23 err/s: 68.28 reconn/s: 0.00
SQL statistics:
    queries performed:
        read:                            0
        write:                           122819
        other:                           61483
        total:                           184302
    transactions:                        30606  (6117.18 per sec.)
    queries:                             184302 (36836.21 per sec.)
    ignored errors:                      271    (54.16 per sec.)
    reconnects:                          0      (0.00 per sec.)

General statistics:
    total time:                          5.0021s
    total number of events:              30606

Latency (ms):
         min:                                    0.13
         avg:                                    0.65
         max:                                    8.69
         95th percentile:                        1.34
"""


def test_sysbench_report_counts_row_events_of_committed_transactions_only() -> None:
    r = parse_sysbench(SYSBENCH_OUTPUT)
    assert r["transactions"] == 30606
    assert r["tps"] == 6117.18
    # "write" also counts statements of deadlocked, rolled-back attempts: not in the binlog.
    assert r["writes"] == 122819
    assert r["row_events"] == 4 * 30606
    assert r["ignored_errors"] == 271
    assert r["total_time_s"] == 5.0021
    assert r["latency_p95_ms"] == 1.34
    assert r["intervals"] == [[2, 5336.28], [4, 7142.09]]


def test_sysbench_output_without_a_report_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="no transactions"):
        parse_sysbench("FATAL: unable to connect to MySQL server on host '127.0.0.1'")


def test_metrics_lag_is_the_worst_task_and_counters_add_up() -> None:
    text = "\n".join(
        [
            "# HELP sluice_lag_milliseconds Now minus the event time of the last row read.",
            "# TYPE sluice_lag_milliseconds gauge",
            'sluice_lag_milliseconds{job="j",task="reader-0"} 1200.5',
            'sluice_lag_milliseconds{job="j",task="reader-1"} 300',
            'sluice_lag_binlog_bytes{job="j",task="reader-0"} 0',
            'sluice_num_read_total{job="j",task="reader-0"} 10',
            'sluice_num_read_total{job="j",task="reader-1"} 5',
        ]
    )
    m = parse_metrics(text)
    assert m["sluice_lag_milliseconds"] == 1200.5
    assert m["sluice_lag_binlog_bytes"] == 0
    assert m["sluice_num_read_total"] == 15


def _samples(lag_at: Callable[[int], float], seconds: int = 300) -> list[dict[str, object]]:
    return [{"t": t, "lag_ms": lag_at(t)} for t in range(0, seconds + 1, 5)]


def test_a_reader_that_keeps_up_is_bounded_despite_whole_second_noise() -> None:
    # Binlog times are whole seconds: the lag jumps between 0 and ~1.5 s while keeping up.
    trend = lag_trend(_samples(lambda t: t * 7919 % 1500), 300)
    assert trend["window_s"] == 60
    assert trend["bounded"] is True


def test_a_steady_large_lag_is_still_bounded() -> None:
    # Behind by 30 s from the start, but not further behind at the end.
    trend = lag_trend(_samples(lambda t: 30_000 + (t % 2) * 1000), 300)
    assert trend["bounded"] is True
    assert abs(trend["slope_per_s"]) < 10


@pytest.mark.parametrize("behind", [0.02, 0.5])
def test_a_reader_falling_behind_is_not_bounded(behind: float) -> None:
    # Capturing (1 - behind) of what is written: the lag grows by behind s per second.
    trend = lag_trend(_samples(lambda t: behind * t * 1000), 300)
    assert trend["bounded"] is False
    assert trend["late"] > trend["early"]
    assert trend["slope_per_s"] == pytest.approx(behind * 1000, rel=0.01)


def test_too_few_samples_decide_nothing() -> None:
    assert lag_trend([{"t": 0, "lag_ms": 0}], 300)["bounded"] is None
    assert lag_trend([{"t": t, "lag_ms": None} for t in range(0, 301, 5)], 300)["bounded"] is None


def test_report_target_row_from_the_4_thread_uncapped_run() -> None:
    from bench.sysbench_report import target_row

    assert target_row([{"bench": "machine"}])[1:] == ("not measured", "open")
    run = {
        "bench": "sysbench_lag",
        "threads": 4,
        "rate_limit_tps": 0,
        "seconds": 300.0,
        "bounded": True,
        "captured_all": True,
        "drain_s": 1.0,
    }
    capped = {**run, "rate_limit_tps": 500, "bounded": False}
    assert target_row([capped, run])[2] == "met"
    assert target_row([{**run, "bounded": False}])[2] == "not met"
    assert target_row([{**run, "seconds": 30.0}])[2] == "open (run shorter than 5 min)"
    assert "caught up never" in target_row([{**run, "drain_s": None}])[1]

"""Render BENCHMARKS.md from the JSON lines ``make bench`` printed."""

from __future__ import annotations

import json
import sys
from typing import Any

NOTES = [
    "",
    "## Reading the numbers (profile of 2026-11-25)",
    "",
    "* The run above shared the 2 cores with other test suites (see the load average column);",
    "  the at-least-once and checkpoint-interval rows were the most affected. Exactly-once",
    "  costs little here: the XA + Kafka commit happens once per checkpoint, not per row, and",
    "  1 s vs 20 s checkpoint intervals gave the same throughput within noise.",
    "* py-spy on a snapshot reader task (channel 1): 43% Avro encoding of the row envelope,",
    "  35% PyMySQL parsing the streamed rows, the rest Kafka produce and bookkeeping. Writer",
    "  tasks spend most of their time decoding Avro and in MariaDB executing the multi-row",
    "  statements. Target of issue 9 (50,000 rows/s end to end) is not met: a compiled",
    "  encoder/decoder and fewer Python objects per row are the next steps.",
    "* Peak memory does not grow with the table: the reader streams (unbuffered cursor),",
    "  the writer's prefetch is capped at 16 MiB; the total is dominated by per-process",
    "  interpreter + client libraries (≈100-150 MiB per task).",
]


def render(results: list[dict[str, Any]]) -> str:
    machine = next((r for r in results if r.get("bench") == "machine"), {})
    lines = [
        "# Benchmarks",
        "",
        "Re-create with `make bench` (real Kafka and MariaDB from `sluice local up`, on the same",
        "machine as the job). Numbers are end to end: source read to sink commit, including",
        "process start-up, topic creation and the final checkpoint.",
        "",
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('memory_gib', '?')} GiB; {machine.get('os', '?')}; Python "
        f"{machine.get('python', '?')}; {machine.get('mariadb', '?')}; Kafka {machine.get('kafka', '?')}. "
        f"Date: {machine.get('date', '?')}.",
        "",
        "## Snapshot MySQL → Kafka → MySQL (6-column rows)",
        "",
        "| config | channels | delivery | checkpoint interval | rows | seconds | rows/s | peak memory (all processes) | peak memory (largest task) | target identical | load avg after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.get("bench") != "snapshot":
            continue
        lines.append(
            f"| {r['config']} | {r['channel']} | {r['delivery']} | {r['interval_ms']} ms | "
            f"{r['rows']:,} | {r['seconds']} | {r['rows_per_s']:,} | {r['peak_memory_mib']} MiB | "
            f"{r['peak_task_memory_mib']} MiB | {r['target_identical']} | {r.get('load_avg_1m_after', '?')} |"
        )
    serde = next((r for r in results if r.get("bench") == "serde"), None)
    if serde:
        lines += [
            "",
            "## Avro serde, one core (`python -m bench.serde`)",
            "",
            "| encode rows/s | decode rows/s | bytes per row |",
            "|---|---|---|",
            f"| {serde['encode_rows_per_s']:,} | {serde['decode_rows_per_s']:,} | {serde['bytes_per_row']} |",
        ]
    cdc_read = [r for r in results if r.get("bench") == "cdc_read"]
    cdc = [r for r in results if r.get("bench") == "cdc"]
    if cdc_read or cdc:
        lines += [
            "",
            "## Binlog CDC (`python -m bench.cdc`)",
            "",
            "Reader alone, one core: binlog rows decoded into row events.",
            "",
            "| table | events | seconds | events/s |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['table']} | {r['events']:,} | {r['seconds']} | {r['events_per_s']:,} |"
            for r in cdc_read
        ]
        lines += [
            "",
            "End to end, binlogreader → 3 mysqlwriter channels, 5-column rows: first source",
            "write until the target's CHECKSUM TABLE equals the source's.",
            "",
            "| writeMode | events | seconds | events/s | target identical |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['write_mode']} | {r['events']:,} | {r['seconds']} | {r['events_per_s']:,} | "
            f"{r['target_identical']} |"
            for r in cdc
        ]
    lines += NOTES
    return "\n".join(lines) + "\n"


def main() -> int:
    with open(sys.argv[1]) as f:
        results = [json.loads(line) for line in f if line.strip().startswith("{")]
    sys.stdout.write(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

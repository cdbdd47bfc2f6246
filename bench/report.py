"""Render BENCHMARKS.md from the JSON lines ``make bench`` printed."""

from __future__ import annotations

import json
import sys
from typing import Any


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
        "| config | channels | delivery | checkpoint interval | rows | seconds | rows/s | peak memory (all processes) | peak memory (largest task) | target identical |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.get("bench") != "snapshot":
            continue
        lines.append(
            f"| {r['config']} | {r['channel']} | {r['delivery']} | {r['interval_ms']} ms | "
            f"{r['rows']:,} | {r['seconds']} | {r['rows_per_s']:,} | {r['peak_memory_mib']} MiB | "
            f"{r['peak_task_memory_mib']} MiB | {r['target_identical']} |"
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
    return "\n".join(lines) + "\n"


def main() -> int:
    with open(sys.argv[1]) as f:
        results = [json.loads(line) for line in f if line.strip().startswith("{")]
    sys.stdout.write(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""README's "Write a connector" example (examples/connector/counter_connector.py), installed as
a third-party distribution: `sluice plugins` lists it with its capabilities, and a job from
its reader to its writer delivers every row, through real Kafka."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_plugins import install_dist, listed, sluice

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "connector" / "counter_connector.py"


def test_the_readme_connector_is_listed_and_copies_every_row(
    kafka_bootstrap, unique_name, tmp_path
):
    site = tmp_path / "site"
    install_dist(
        site,
        "sluice-counter",
        "1.0",
        {
            "counterreader": "counter_connector:COUNTERREADER",
            "jsonlwriter": "counter_connector:JSONLWRITER",
        },
        {"counter_connector": EXAMPLE.read_text()},
    )
    plugins = listed(sluice(site, "plugins", "--json"))
    assert plugins["counterreader"]["distribution"] == "sluice-counter 1.0"
    caps = {
        k: v["value"] if isinstance(v, dict) else v
        for k, v in plugins["counterreader"]["capabilities"].items()
    }
    assert caps["resumable"] is True and caps["bounded"] is True
    out_dir = tmp_path / "out"
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {
                "job": {
                    "name": unique_name,
                    "content": [
                        {
                            "reader": {"name": "counterreader", "parameter": {"rows": 2500}},
                            "writer": {"name": "jsonlwriter", "parameter": {"path": str(out_dir)}},
                        }
                    ],
                    "setting": {
                        "speed": {"readerChannel": 3, "writerChannel": 2},
                        "delivery": "at-least-once",
                    },
                }
            }
        )
    )
    run = sluice(site, "run", str(job), "-q", "--bootstrap-servers", kafka_bootstrap)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [
        json.loads(line)
        for f in sorted(out_dir.glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    assert sorted(r["n"] for r in rows) == list(range(2500))  # each once: no crash, no replay
    assert all(int(r["square"]) == r["n"] ** 2 for r in rows)
    assert len(list(out_dir.glob("*.jsonl"))) == 2

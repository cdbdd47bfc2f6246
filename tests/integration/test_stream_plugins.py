"""streamreader → streamwriter (FlinkX's test plugins) through real Kafka, via the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "stream_to_stream.json"


def test_stream_example_prints_every_generated_row_once(kafka_bootstrap, unique_name, tmp_path):
    text = EXAMPLE.read_text().replace('"name": "stream_to_stream"', f'"name": "{unique_name}"')
    text = text.replace('"sliceRecordCount": [5, 5]', '"sliceRecordCount": [700, 1300]')
    job = tmp_path / "job.json"
    job.write_text(text)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "coordinator.cli",
            "run",
            str(job),
            "-q",
            "--bootstrap-servers",
            kafka_bootstrap,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    ids = sorted(r["id"] for r in rows)
    # Channel c of 2 numbers its rows n*2 + c: 700 rows of channel 0, 1300 of channel 1.
    expected = sorted([n * 2 for n in range(700)] + [n * 2 + 1 for n in range(1300)])
    assert ids == expected, (
        f"missing {sorted(set(expected) - set(ids))[:10]}, duplicated {len(ids) - len(set(ids))}"
    )
    assert all(r["source"] == "sluice" for r in rows)
    assert "numWrite" in out.stdout and "2,000" in out.stdout


def test_a_third_party_reader_runs_through_kafka(kafka_bootstrap, unique_name, tmp_path):
    """A plugin installed by another distribution reads, its rows cross Kafka, streamwriter
    prints each once: the reader tasks find it through the entry points as the runner did."""
    from tests.unit.test_plugins import TINY_CONNECTOR, TINY_JOB, install_dist, job_file, sluice

    site = tmp_path / "site"
    install_dist(
        site,
        "sluice-tiny",
        "0.3",
        {"tinyreader": "tiny_connector:TINYREADER"},
        {"tiny_connector": TINY_CONNECTOR},
    )
    reader = {**TINY_JOB[0], "parameter": {"greeting": "hi", "rows": 50}}
    job = job_file(tmp_path, reader, TINY_JOB[1])
    doc = json.loads(job.read_text())
    doc["job"]["name"] = unique_name
    job.write_text(json.dumps(doc))
    out = sluice(site, "run", str(job), "-q", "--bootstrap-servers", kafka_bootstrap)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert sorted(r["n"] for r in rows) == list(range(50))
    assert {(r["table"], r["greeting"]) for r in rows} == {("tiny.t", "hi")}

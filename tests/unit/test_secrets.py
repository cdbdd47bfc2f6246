"""Secret references in job JSON (``${env:NAME}``, ``${file:PATH:KEY}``): resolved when the job
is built, every problem one line with its JSON path, nothing else touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.job import JobConfigError, build_job
from coordinator.job.secrets import has_references, resolve


def job(parameter: dict) -> dict:
    url = "jdbc:mysql://127.0.0.1:3306/db"
    reader = {"connection": [{"jdbcUrl": [url], "table": ["t"]}], **parameter}
    writer = {"connection": [{"jdbcUrl": url, "table": ["t2"]}]}
    return {"job": {"content": [{"reader": {"name": "mysqlreader", "parameter": reader},
                                 "writer": {"name": "mysqlwriter", "parameter": writer}}]}}  # fmt: skip


def test_env_and_file_references_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_USER", "app")
    secrets = tmp_path / "db.properties"
    secrets.write_text("# comment\npassword = s3cr=t:with colons\nother: x\n")
    doc = job({"username": "${env:DB_USER}", "password": f"${{file:{secrets}:password}}"})
    built = build_job(doc)
    config = built.content[0].reader.config
    assert config.username == "app"  # type: ignore[attr-defined]
    assert config.password.get_secret_value() == "s3cr=t:with colons"  # type: ignore[attr-defined]
    assert doc["job"]["content"][0]["reader"]["parameter"]["username"] == "${env:DB_USER}"


def test_several_references_in_one_string_and_other_values_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("A", "1")
    monkeypatch.setenv("B", "two")
    out, problems = resolve({"x": "${env:A}-${env:B}", "n": 5, "l": ["${env:B}", None, True]})
    assert problems == []
    assert out == {"x": "1-two", "n": 5, "l": ["two", None, True]}
    assert not has_references({"x": "$env:A", "y": "${other:A}"})


def test_each_problem_is_one_line_naming_its_json_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    props = tmp_path / "p.properties"
    props.write_text("present=1\n")
    doc = job({
        "username": "${env:NOPE}",
        "password": f"${{file:{tmp_path}/missing.properties:password}}",
        "where": f"k = '${{file:{props}:absent}}'",
        "customSql": "${file:no-key}",
    })  # fmt: skip
    with pytest.raises(JobConfigError) as refused:
        build_job(doc)
    problems = refused.value.problems
    base = "job.content[0].reader.parameter"
    assert problems[0] == f"{base}.username: environment variable 'NOPE' is not set (${{env:NOPE}})"
    assert problems[1].startswith(f"{base}.password: cannot read {tmp_path}/missing.properties")
    assert problems[2] == f"{base}.where: {props} has no key 'absent'"
    assert problems[3] == f"{base}.customSql: ${{file:no-key}} should be ${{file:PATH:KEY}}"
    assert all("\n" not in p for p in problems)

"""Connector plugins found through the ``sluice.connectors`` entry points (issue 15 item 2).

Third-party packages are "installed" the way importlib.metadata finds them without pip: a
folder on PYTHONPATH holding the package's modules and its ``NAME-VERSION.dist-info`` with
METADATA and entry_points.txt. The CLI runs as a subprocess so that discovery starts fresh.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest

from coordinator import cli, plugins
from coordinator.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

BUILTINS = {
    "mysqlreader": "reader",
    "binlogreader": "reader",
    "streamreader": "reader",
    "postgresqlreader": "reader",
    "pgwalreader": "reader",
    "mysqlwriter": "writer",
    "postgresqlwriter": "writer",
    "hdfswriter": "writer",
    "streamwriter": "writer",
    "kafkawriter": "writer",
}

TINY_CONNECTOR = """
from pydantic import Field

from coordinator.job.base import PluginConfig
from coordinator.plugins import Plugin
from schemas.events import Op, RowEvent, SourcePosition
from schemas.table import Column, TableSchema
from sink_connectors.base import Sink
from source_connectors.base import Source, SourcePartReader

TABLE = TableSchema(
    database="tiny", table="t",
    columns=(Column(name="n", data_type="bigint", column_type="bigint(20)"),
             Column(name="greeting", data_type="varchar", column_type="varchar(64)")),
    primary_key=("n",),
)


class TinyReaderConfig(PluginConfig):
    greeting: str = Field(description="what every row says")
    rows: int = Field(default=2, description="how many rows")


class TinyPart(SourcePartReader):
    def __init__(self, config, task):
        self.config, self.task, self.done = config, task, False

    def next_batch(self):
        if self.done:
            return None
        self.done = True
        return [RowEvent(Op.SNAPSHOT, TABLE, None, (n, self.config.greeting),
                         SourcePosition(task=self.task, chunk="0", seq=n + 1), 0)
                for n in range(self.config.rows)]

    def snapshot(self):
        return {}


class TinySource(Source):
    bounded = True
    supports_resume = False

    def check(self):
        pass

    def list_parts(self):
        return ["0"]

    def build_part(self, part_id, task, resume_state):
        return TinyPart(self.config, task)


class TinySink(Sink):
    def check(self):
        pass

    def build_writer(self, task_id):
        raise NotImplementedError


TINYREADER = Plugin(name="tinyreader", kind="reader", config=TinyReaderConfig,
                    factory=TinySource)
TINYWRITER = Plugin(name="tinywriter", kind="writer", config=PluginConfig,
                    factory="tiny_connector:TinySink", aliases=("tinysink",))
"""

READ_ALL = """
import json, sys
from coordinator.connectors import build_source
from coordinator.job import load_job

source = build_source(load_job(sys.argv[1]))
source.check()
rows = []
for part in source.list_parts():
    reader = source.build_part(part, "r0", None)
    while (batch := reader.next_batch()) is not None:
        rows += [list(e.after) for e in batch]
print(json.dumps({"class": type(source).__name__, "rows": rows}))
"""


def install_dist(
    site: Path, dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str]
) -> None:
    """What ``pip install`` would leave in ``site`` for a distribution, minus pip."""
    site.mkdir(exist_ok=True)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{plugins.GROUP}]\n{lines}")
    for name, text in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(text))


def sluice(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process that sees the distributions installed in ``site``."""
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "coordinator.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        cwd=site,
        timeout=60,
    )


def listed(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in json.loads(result.stdout)["plugins"]}


def job_file(tmp_path: Path, reader: dict[str, Any], writer: dict[str, Any]) -> Path:
    path = tmp_path / "job.json"
    # tinyreader cannot resume, which the runner refuses for an exactly-once job.
    setting = {"delivery": "at-least-once"}
    doc = {"job": {"content": [{"reader": reader, "writer": writer}], "setting": setting}}
    path.write_text(json.dumps(doc))
    return path


TINY_JOB = (
    {"name": "TinyReader", "parameter": {"greeting": "hi", "rows": 3}},
    {"name": "streamwriter", "parameter": {}},
)


def test_every_builtin_is_an_entry_point_of_the_installed_sluice() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"][
        plugins.GROUP
    ]
    installed = {
        ep.name: ep.value
        for ep in importlib.metadata.entry_points(group=plugins.GROUP)
        if ep.dist is not None and ep.dist.name == "sluice"
    }
    assert set(declared) == set(BUILTINS)
    assert installed == declared, "installed metadata is stale: run make install"


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_sluice_plugins_lists_every_builtin_with_its_keys_and_capabilities(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc, out, err = run_in_process(capsys, "plugins", "--json")
    assert (rc, err) == (0, "")
    found = {p["name"]: p for p in json.loads(out)["plugins"]}
    assert {name: p["kind"] for name, p in found.items()} == BUILTINS
    for name, p in found.items():
        assert p["distribution"].startswith("sluice "), name
        model = plugins.lookup(name, p["kind"], "x").config_model
        keys = [k["key"] for k in p["keys"]]
        assert keys == [info.alias or field for field, info in model.model_fields.items()]
    assert {"splitPk", "increColumn", "polling", "fetchSize"} <= {
        k["key"] for k in found["mysqlreader"]["keys"]
    }
    assert {k: v for k, v in found["mysqlwriter"]["keys"][3].items() if k != "description"} == {
        "key": "writeMode",
        "required": False,
    }
    assert [k["key"] for k in found["streamreader"]["keys"] if k["required"]] == [
        "column",
        "sliceRecordCount",
    ]

    def capability(name: str, what: str) -> Any:
        return found[name]["capabilities"][what]["value"]

    assert capability("binlogreader", "bounded") is False
    assert capability("streamreader", "bounded") is True
    assert capability("binlogreader", "resumable") is True
    assert capability("mysqlwriter", "two-phase") is True  # XA PREPARE
    assert capability("streamwriter", "two-phase") is False
    assert capability("kafkawriter", "idempotent") is False
    # Not known until the job is read: said so, not guessed.
    bounded = found["mysqlreader"]["capabilities"]["bounded"]
    assert bounded["value"] is None and '"polling": true' in bounded["note"]
    idempotent = found["mysqlwriter"]["capabilities"]["idempotent"]
    assert idempotent["value"] is None and "writeMode" in idempotent["note"]

    rc, text, _ = run_in_process(capsys, "plugins")
    assert rc == 0
    assert "mysqlwriter: writer from sluice " in text
    assert "  two-phase: yes\n" in text
    assert "writeMode" in text and "splitPk" in text


def test_a_third_party_plugin_is_listed_and_usable(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_dist(
        site,
        "sluice-tiny",
        "0.3",
        {"tinyreader": "tiny_connector:TINYREADER", "tinywriter": "tiny_connector:TINYWRITER"},
        {"tiny_connector": TINY_CONNECTOR},
    )
    result = sluice(site, "plugins", "--json")
    assert (result.returncode, result.stderr) == (0, "")
    found = listed(result)
    assert set(BUILTINS) | {"tinyreader", "tinywriter"} == set(found)
    tiny = found["tinyreader"]
    assert (tiny["kind"], tiny["distribution"]) == ("reader", "sluice-tiny 0.3")
    assert tiny["entry_point"] == "tinyreader = tiny_connector:TINYREADER"
    assert [(k["key"], k["required"]) for k in tiny["keys"]] == [
        ("greeting", True),
        ("rows", False),
    ]
    assert {c: v["value"] for c, v in tiny["capabilities"].items()} == {
        "bounded": True,
        "resumable": False,
    }
    writer = found["tinywriter"]
    assert writer["aliases"] == ["tinysink"]
    assert writer["capabilities"]["idempotent"] == {
        "value": None,
        "note": "unknown: the plugin does not declare it",
    }

    # Usable: a job names it, the loader validates its parameter block, the runner builds it.
    job = job_file(tmp_path, *TINY_JOB)
    validate = sluice(site, "validate", str(job))
    assert validate.returncode == 0, validate.stderr
    assert json.loads(validate.stdout)["job"]["content"][0]["reader"]["name"] == "tinyreader"
    read = subprocess.run(
        [sys.executable, "-c", READ_ALL, str(job)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=site,
        timeout=60,
    )
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout) == {
        "class": "TinySource",
        "rows": [[0, "hi"], [1, "hi"], [2, "hi"]],
    }
    # Its own config model checks the block, with the JSON path.
    bad = job_file(tmp_path, {"name": "tinyreader", "parameter": {}}, TINY_JOB[1])
    refused = sluice(site, "validate", str(bad))
    assert refused.returncode != 0
    assert "job.content[0].reader.parameter.greeting: required key is missing" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_broken_entry_points_are_one_line_each_and_hide_no_other_plugin(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_dist(
        site,
        "sluice-tiny",
        "0.3",
        {"tinyreader": "tiny_connector:TINYREADER"},
        {"tiny_connector": TINY_CONNECTOR},
    )
    install_dist(
        site,
        "sluice-broken",
        "1.0",
        {
            "brokenreader": "no_such_module:PLUGIN",
            "notaplugin": "json:dumps",
            "lazywriter": "lazy:LAZYWRITER",
        },
        {
            "lazy": """
            from coordinator.plugins import Plugin
            LAZYWRITER = Plugin("lazywriter", "writer", "lazy:Nope", "lazy:Nope")
            """
        },
    )
    # A writer that claims a built-in's name, and one that two distributions declare.
    shadow = """
    from coordinator.plugins import Plugin
    CONFIG, SINK = "sink_connectors.stream_config:StreamWriterConfig", "sink_connectors.stream:StreamSink"
    MYSQLWRITER = Plugin("mysqlwriter", "writer", CONFIG, SINK)
    TWIN = Plugin("twinwriter", "writer", CONFIG, SINK)
    """
    install_dist(site, "sluice-shadow", "2.0", {"mysqlwriter": "shadow:MYSQLWRITER"}, {})
    (site / "shadow.py").write_text(textwrap.dedent(shadow))
    install_dist(site, "sluice-twin-a", "1.0", {"twinwriter": "shadow:TWIN"}, {})
    install_dist(site, "sluice-twin-b", "1.0", {"twinwriter": "shadow:TWIN"}, {})

    result = sluice(site, "plugins", "--json")
    assert result.returncode == 1
    found = listed(result)
    # Nothing else is hidden: every built-in and the good third-party plugin are listed, and
    # mysqlwriter is still Sluice's own.
    assert set(found) == set(BUILTINS) | {"tinyreader"}
    assert found["mysqlwriter"]["distribution"].startswith("sluice ")
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == 6, result.stderr
    expected = [
        ('"brokenreader = no_such_module:PLUGIN" (distribution sluice-broken 1.0)', "import"),
        ('"notaplugin = json:dumps" (distribution sluice-broken 1.0)', "not a"),
        ('"mysqlwriter = shadow:MYSQLWRITER" (distribution sluice-shadow 2.0)', "Sluice's own"),
        ('"twinwriter = shadow:TWIN" (distribution sluice-twin-a 1.0)', "sluice-twin-b"),
        ('"twinwriter = shadow:TWIN" (distribution sluice-twin-b 1.0)', "sluice-twin-a"),
        ('"lazywriter = lazy:LAZYWRITER" (distribution sluice-broken 1.0)', "lazy:Nope"),
    ]

    def subject(line: str) -> str:  # the entry point a line is about: the first one it names
        return line.split('entry point "', 1)[1].split(")", 1)[0]

    for where, why in expected:
        matching = [line for line in lines if f'"{subject(line)})' == where]
        assert len(matching) == 1, (where, result.stderr)
        assert matching[0].startswith("sluice: error: ") and why in matching[0]
    assert json.loads(result.stdout)["broken"] == [line[len("sluice: error: ") :] for line in lines]

    # A job with good plugins runs on; the broken ones are one warning line each.
    validate = sluice(site, "validate", str(job_file(tmp_path, *TINY_JOB)))
    assert validate.returncode == 0, validate.stderr
    warnings = [line for line in validate.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 5, validate.stderr  # lazywriter's factory is imported only if used

    # A job naming a broken one gets one line per name: JSON path, entry point, distribution.
    broken = job_file(tmp_path, {"name": "brokenreader"}, {"name": "twinwriter"})
    refused = sluice(site, "validate", str(broken))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert (
        'job.content[0].reader.name: reader "brokenreader" cannot be used: plugin entry point '
        '"brokenreader = no_such_module:PLUGIN" (distribution sluice-broken 1.0) ignored: it '
        "cannot be imported: ModuleNotFoundError: No module named 'no_such_module'"
    ) in refused.stderr
    twin = [line for line in refused.stderr.splitlines() if "writer.name" in line]
    assert len(twin) == 1 and "sluice-twin-a 1.0" in twin[0] and "sluice-twin-b 1.0" in twin[0]

    # A plugin whose config module fails to import: found, but refused where the job names it.
    lazy = job_file(tmp_path, TINY_JOB[0], {"name": "lazywriter", "parameter": {}})
    refused = sluice(site, "validate", str(lazy))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert (
        "job.content[0].writer.name: writer 'lazywriter' from entry point \"lazywriter = "
        "lazy:LAZYWRITER\" (distribution sluice-broken 1.0): its config 'lazy:Nope' cannot be "
        "imported: ImportError: module 'lazy' has no 'Nope'"
    ) in refused.stderr


def test_missing_builtins_say_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "registry", lambda: plugins.discover([]))
    with pytest.raises(ConfigError) as info:
        plugins.lookup("mysqlreader", "reader", "job.content[0].reader.name")
    message = str(info.value)
    assert message.startswith('job.content[0].reader.name: unknown reader "mysqlreader"')
    assert "make install" in message and "\n" not in message


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"kind": "source"}, "kind must be reader or writer"),
        ({"name": "MysqlX"}, "lower case"),
        ({"aliases": ("x", "x")}, "distinct"),
        ({"depends": {"two-phase": "?"}}, "no reader capability"),
        ({"idempotent": True}, "writer capability"),
    ],
)
def test_a_plugin_declaration_is_checked(kwargs: dict[str, Any], problem: str) -> None:
    args: dict[str, Any] = {"name": "x", "kind": "reader", "config": "m:C", "factory": "m:F"}
    with pytest.raises(ValueError, match=problem):
        plugins.Plugin(**{**args, **kwargs})


def test_a_sink_hears_whether_the_source_ends_from_the_source_config() -> None:
    """One plugin, two readers: ``mysqlreader`` polling is endless. The sink was told the
    plugin's class default (bounded) and so never followed the source's DDL."""
    from coordinator.connectors import build_sink
    from coordinator.job import build_job
    from testkit.mysql import mysql_job

    job = mysql_job("mysql://root@127.0.0.1:1", "d", "t", "t2", name="bounded")
    assert build_sink(build_job(job)).context.source_bounded is True
    reader = job["job"]["content"][0]["reader"]["parameter"]
    reader.update({"increColumn": "id", "polling": True, "pollingInterval": 1000})
    assert build_sink(build_job(job)).context.source_bounded is False

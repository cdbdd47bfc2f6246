"""coordinator.job: FlinkX job JSON -> typed, validated models; errors name the JSON path."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from coordinator import plugins
from coordinator.errors import ConfigError
from coordinator.job import Job, JobConfigError, PluginConfig, build_job, load_job, parse_job
from sink_connectors.mysql.config import MysqlWriterConfig
from sink_connectors.stream_config import StreamWriterConfig
from source_connectors.base import Source
from source_connectors.mysql.config import MysqlReaderConfig
from source_connectors.stream_config import StreamReaderConfig

ROOT = Path(__file__).resolve().parents[2]
MYSQL_EXAMPLE = ROOT / "examples" / "mysql_to_mysql.json"
STREAM_EXAMPLE = ROOT / "examples" / "stream_to_stream.json"
READER = "job.content[0].reader"
WRITER = "job.content[0].writer"
SECRET = "hunter2-Very-Secret"


def mysql_doc() -> dict[str, Any]:
    """The example as a dict, for tests that change one key."""
    job = load_job(MYSQL_EXAMPLE)
    doc = job.redacted()
    for side in ("reader", "writer"):
        doc["job"]["content"][0][side]["parameter"]["password"] = ""
    return doc


def stream_doc(**parameter: Any) -> dict[str, Any]:
    reader = {"column": [{"name": "id", "type": "id"}], "sliceRecordCount": 3, **parameter}
    return {
        "job": {
            "content": [
                {
                    "reader": {"name": "streamreader", "parameter": reader},
                    "writer": {"name": "streamwriter", "parameter": {}},
                }
            ]
        }
    }


def errors_of(doc: object) -> str:
    with pytest.raises(JobConfigError) as info:
        build_job(doc, origin="job.json")
    return str(info.value)


# ---- the examples -----------------------------------------------------------------------


def test_mysql_example_parses_without_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sluice.job"):
        job = load_job(MYSQL_EXAMPLE)
    assert job.warnings == []
    assert caplog.records == []
    assert job.name == "mysql_to_mysql"  # no job.name: the file's stem

    reader, writer = job.reader, job.writer
    assert (reader.name, reader.kind, reader.path) == ("mysqlreader", "reader", READER)
    assert (writer.name, writer.kind, writer.path) == ("mysqlwriter", "writer", WRITER)
    rc = reader.config
    assert isinstance(rc, MysqlReaderConfig)
    assert rc.connection[0].jdbcUrl == [
        "jdbc:mysql://127.0.0.1:3306/rpl?useUnicode=true&characterEncoding=utf8"
    ]
    assert rc.connection[0].urls[0].database == "rpl"
    assert rc.connection[0].table == ["flink_test"]
    assert rc.column_names == ["id", "name", "age"]
    assert (rc.fetchSize, rc.where, rc.splitPk, rc.queryTimeOut) == (10, "id > 0", "id", 1000)
    assert rc.customSql is None  # "" means unset
    assert rc.startLocation == "20"
    assert rc.requestAccumulatorInterval == 2
    assert rc.username == "root" and rc.password.get_secret_value() == ""

    wc = writer.config
    assert isinstance(wc, MysqlWriterConfig)
    assert wc.writeMode == "replace"
    assert wc.column_names == ["id", "name", "age"]
    assert wc.url.port == 3306 and wc.table == "flink_test_dst"
    assert (wc.preSql, wc.postSql) == ([], [])  # preSql is commented out in the note

    s = job.setting
    assert (s.speed.channel, s.speed.reader_channels, s.speed.writer_channels) == (1, 3, 3)
    assert s.error_limit.record == 100
    assert s.restore.is_restore and s.restore.max_row_num_for_checkpoint == 10
    assert (s.restore.restore_column_name, s.restore.restore_column_index) == ("id", 0)
    assert s.log.level == "debug" and s.log.python_level == logging.DEBUG
    assert s.delivery == "exactly-once" and s.exactly_once
    assert s.partitions == 3


def test_mysql_example_matches_the_note_but_for_credentials() -> None:
    note = Path("/work/shared/reference/flinkx-notes.zh.txt")
    if not note.exists():  # pragma: no cover - the note is not shipped with the repository
        pytest.skip("design note not available")
    lines = note.read_text(encoding="utf-8").splitlines()
    start = lines.index("{")
    end = next(i for i in range(start + 1, len(lines)) if lines[i] == "}")
    expected = "\n".join(lines[start : end + 1]).replace('"password": "123456"', '"password": ""')
    example = MYSQL_EXAMPLE.read_text(encoding="utf-8").splitlines()
    assert example[0].startswith("// ") and "sluice run" in example[0]
    assert "\n".join(example[1:]) == expected


def test_stream_example_parses() -> None:
    job = load_job(STREAM_EXAMPLE)
    assert job.warnings == []
    assert job.name == "stream_to_stream"
    rc = job.reader.config
    assert isinstance(rc, StreamReaderConfig)
    assert rc.column_names == ["id", "name", "score", "source"]
    assert rc.column[3].value == "sluice"
    assert [rc.records_for(i) for i in range(3)] == [5, 5, 5]
    assert isinstance(job.writer.config, StreamWriterConfig) and job.writer.config.print


# ---- lenient JSON ------------------------------------------------------------------------


def test_comments_and_trailing_commas() -> None:
    text = """
    /* block
       comment */
    {"job": {  // line comment
      "name": "c", /* inline */
      "content": [{
        "reader": {"name": "streamreader", "parameter": {
          "column": [{"name": "id", "type": "id"},],
          "sliceRecordCount": [1, 2,],   // trailing commas
        }},
        "writer": {"name": "streamwriter", "parameter": {"print": false,},},
      },],
    },}
    """
    job = parse_job(text)
    assert job.name == "c"
    assert job.reader.config.sliceRecordCount == [1, 2]  # type: ignore[attr-defined]


def test_comment_markers_inside_strings_survive() -> None:
    doc = mysql_doc()
    where = "name <> '// not a comment' and note <> '/* nor this */', x"
    doc["job"]["content"][0]["reader"]["parameter"]["where"] = where
    doc["job"]["content"][0]["reader"]["parameter"]["column"] = ["id", 'n"a,]me', "age"]
    job = parse_job(json.dumps(doc, indent=2) + "\n// trailing comment\n")
    rc = job.reader.config
    assert isinstance(rc, MysqlReaderConfig)
    assert rc.where == where
    assert rc.connection[0].jdbcUrl[0].startswith("jdbc:mysql://127.0.0.1:3306/")
    assert rc.column_names == ["id", 'n"a,]me', "age"]


def test_malformed_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "job": {\n    "content": []\n    "setting": {}\n  }\n}\n')
    with pytest.raises(ConfigError) as info:
        load_job(path)
    message = str(info.value)
    assert (
        message == f"{path}:4:5: invalid JSON: expected ',' between items, or a closing '}}' or ']'"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"job": {"name": "x"', "<job>:1:21: invalid JSON: expected ','"),
        ('{"job": {"name": }}', "<job>:1:18: invalid JSON: expected a value"),
        ("{\n  /* never closed\n}", "<job>:2:3: invalid JSON: comment opened with '/*'"),
        ('{"job": 1} {}', "<job>:1:12: invalid JSON: expected nothing after"),
        ("{'job': 1}", "<job>:1:2: invalid JSON: expected a key in double quotes"),
        ('{"job": NaN}', "NaN is not valid JSON"),
        ("", "the file is empty"),
        ("  // only a comment\n", "the file holds only comments"),
        ("[]", "expected a JSON object"),
        ('"job"', "expected a JSON object"),
        ("{}", "job: required key is missing"),
        ('{"job": []}', "job: expected an object, got a list"),
    ],
)
def test_bad_documents(text: str, expected: str) -> None:
    with pytest.raises(JobConfigError) as info:
        parse_job(text)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_and_bom(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="job file not found"):
        load_job(tmp_path / "nope.json")
    path = tmp_path / "bom.json"
    path.write_text("\ufeff" + STREAM_EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_job(path).name == "stream_to_stream"


# ---- errors name the JSON path -----------------------------------------------------------


def test_unknown_reader_suggests_the_closest() -> None:
    doc = mysql_doc()
    doc["job"]["content"][0]["reader"]["name"] = "mysqlreadr"
    assert errors_of(doc) == (
        f'job.json: {READER}.name: unknown reader "mysqlreadr"; '
        "known readers: binlogreader, mysqlreader, pgwalreader, postgresqlreader, streamreader (did you mean "
        "mysqlreader?)"
    )


def test_writer_used_as_reader() -> None:
    doc = mysql_doc()
    doc["job"]["content"][0]["reader"]["name"] = "mysqlwriter"
    message = errors_of(doc)
    assert f'{READER}.name: "mysqlwriter" is a writer, not a reader' in message


def test_missing_table() -> None:
    doc = mysql_doc()
    del doc["job"]["content"][0]["reader"]["parameter"]["connection"][0]["table"]
    assert errors_of(doc) == (
        f"job.json: {READER}.parameter.connection[0].table: required key is missing"
    )


def test_bad_jdbc_url() -> None:
    doc = mysql_doc()
    doc["job"]["content"][0]["reader"]["parameter"]["connection"][0]["jdbcUrl"] = [
        "jdbc:postgresql://x/y"
    ]
    assert errors_of(doc).startswith(
        f"job.json: {READER}.parameter.connection[0].jdbcUrl[0]: expected "
        'jdbc:mysql://host[:port]/database[?options], got "jdbc:postgresql://x/y"'
    )


def test_bad_jdbc_url_given_as_a_string_points_at_the_string() -> None:
    doc = mysql_doc()
    doc["job"]["content"][0]["reader"]["parameter"]["connection"][0]["jdbcUrl"] = "jdbc:mysql://h"
    assert f"{READER}.parameter.connection[0].jdbcUrl: expected jdbc:mysql://" in errors_of(doc)
    doc["job"]["content"][0]["writer"]["parameter"]["connection"][0]["jdbcUrl"] = ["a", "b"]
    assert f"{WRITER}.parameter.connection[0].jdbcUrl: expected one jdbcUrl" in errors_of(doc)


def test_unknown_write_mode() -> None:
    doc = mysql_doc()
    doc["job"]["content"][0]["writer"]["parameter"]["writeMode"] = "upsert"
    assert errors_of(doc) == (
        f"job.json: {WRITER}.parameter.writeMode: "
        'expected one of insert, replace, update, got "upsert"'
    )


def test_write_mode_is_case_insensitive() -> None:
    doc = mysql_doc()
    doc["job"]["content"][0]["writer"]["parameter"]["writeMode"] = "UPDATE"
    assert build_job(doc).writer.config.writeMode == "update"  # type: ignore[attr-defined]


def test_negative_channel() -> None:
    doc = mysql_doc()
    doc["job"]["setting"]["speed"]["channel"] = -2
    assert errors_of(doc) == "job.json: job.setting.speed.channel: expected a number >= 1, got -2"


def test_wrong_type() -> None:
    doc = mysql_doc()
    doc["job"]["setting"]["speed"]["channel"] = "three"
    assert errors_of(doc) == (
        'job.json: job.setting.speed.channel: expected an integer, got "three"'
    )


def test_more_than_one_content_entry() -> None:
    doc = mysql_doc()
    doc["job"]["content"].append(doc["job"]["content"][0])
    assert errors_of(doc) == (
        "job.json: job.content: only one reader/writer pair per job is supported (found 2)"
    )


def test_every_problem_is_reported_and_the_first_line_summarises() -> None:
    doc = mysql_doc()
    doc["job"]["content"][0]["writer"]["parameter"]["writeMode"] = "upsert"
    doc["job"]["content"][0]["reader"]["parameter"]["fetchSize"] = 0
    doc["job"]["setting"]["speed"]["channel"] = "three"
    with pytest.raises(JobConfigError) as info:
        build_job(doc, origin="job.json")
    first, *rest = str(info.value).splitlines()
    assert first == (
        f"job.json: {READER}.parameter.fetchSize: expected a number >= 1, got 0 "
        "(and 2 more problems below)"
    )
    assert [line.strip() for line in rest] == info.value.problems[1:]
    assert len(info.value.problems) == 3
    assert "pydantic" not in str(info.value) and "Input should" not in str(info.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda p: p["column"].__setitem__(1, ""),
            f"{READER}.parameter.column[1]: must not be empty",
        ),
        (
            lambda p: p["column"].__setitem__(1, {"name": " "}),
            f"{READER}.parameter.column[1].name: must not be empty",
        ),
        (
            lambda p: p["column"].__setitem__(1, {"type": "int"}),
            f"{READER}.parameter.column[1].name: required key is missing",
        ),
        (
            lambda p: p["column"].__setitem__(1, "ID"),
            f'{READER}.parameter.column: column "ID" is listed twice',
        ),
        (
            lambda p: p.__setitem__("column", ["*", "id"]),
            f'{READER}.parameter.column: "*" (all columns) must be the only entry',
        ),
        (lambda p: p.__setitem__("connection", []), "expected at least 1 item, got 0"),
        (
            lambda p: p.__setitem__("splitStrategy", "hash"),
            'splitStrategy: expected one of range, mod, got "hash"',
        ),
        (
            lambda p: p.__setitem__("polling", True),
            f'{READER}.parameter: "polling": true needs "increColumn"',
        ),
    ],
)
def test_reader_parameter_errors(change: Any, expected: str) -> None:
    doc = mysql_doc()
    change(doc["job"]["content"][0]["reader"]["parameter"])
    assert expected in errors_of(doc)


def test_setting_errors() -> None:
    doc = mysql_doc()
    doc["job"]["setting"].update(
        {
            "log": {"level": "trace"},
            "delivery": "once",
            "errorLimit": {"percentage": 101},
            "restore": {"checkpointInterval": 10},
            "kafka": {"partitions": 0},
        }
    )
    message = errors_of(doc)
    for expected in [
        'job.setting.log.level: expected one of debug, info, warn, warning, error, got "trace"',
        'job.setting.delivery: expected one of exactly-once, at-least-once, got "once"',
        "job.setting.errorLimit.percentage: expected a number <= 100",
        "job.setting.restore.checkpointInterval: expected a number >= 100, got 10",
        "job.setting.kafka.partitions: expected a number >= 1, got 0",
    ]:
        assert expected in message


def test_whole_job_checks() -> None:
    doc = mysql_doc()
    doc["job"]["content"][0]["writer"]["parameter"]["column"].pop()
    assert f"{WRITER}.parameter.column: 2 columns, but the reader has 3" in errors_of(doc)
    doc = mysql_doc()
    doc["job"]["setting"]["restore"]["restoreColumnName"] = "missing"
    assert 'job.setting.restore.restoreColumnName: "missing" is not read' in errors_of(doc)
    doc = mysql_doc()
    doc["job"]["setting"]["restore"]["restoreColumnIndex"] = 1
    assert 'column 1 is "name", but restoreColumnName is "id"' in errors_of(doc)


def test_stream_reader_errors() -> None:
    message = errors_of(stream_doc(sliceRecordCount=[1, -2]))
    assert f"{READER}.parameter.sliceRecordCount[1]: expected a number >= 0, got -2" in message
    message = errors_of(stream_doc(column=[{"name": "id", "type": "uuid"}]))
    assert f"{READER}.parameter.column[0].type: expected one of id, int" in message
    assert 'got "uuid"' in message
    assert f"{READER}.parameter.column: expected at least 1 item" in errors_of(
        stream_doc(column=[])
    )


# ---- unknown keys warn ---------------------------------------------------------------------


def test_unknown_keys_warn_with_path_and_do_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    doc = mysql_doc()
    doc["jobs"] = {}
    doc["job"]["contnet"] = []
    doc["job"]["content"][0]["reader"]["parameter"]["fetchsize"] = 5
    doc["job"]["content"][0]["reader"]["parameter"]["connection"][0]["tabel"] = ["x"]
    doc["job"]["content"][0]["writer"]["parameter"]["column"][0]["typ"] = "x"
    doc["job"]["content"][0]["writer"]["extra"] = 1
    doc["job"]["setting"]["speed"]["chanel"] = 2
    doc["job"]["setting"]["dirty"] = {"path": "/tmp"}
    with caplog.at_level(logging.WARNING, logger="sluice.job"):
        job = build_job(doc, origin="job.json")
    assert job.warnings == [
        "jobs: unknown key, ignored (did you mean job?)",
        "job.contnet: unknown key, ignored (did you mean content?)",
        f"{READER}.parameter.fetchsize: unknown key, ignored (did you mean fetchSize?)",
        f"{READER}.parameter.connection[0].tabel: unknown key, ignored (did you mean table?)",
        f"{WRITER}.extra: unknown key, ignored",
        f"{WRITER}.parameter.column[0].typ: unknown key, ignored (did you mean type?)",
        "job.setting.dirty: unknown key, ignored",
        "job.setting.speed.chanel: unknown key, ignored (did you mean channel?)",
    ]
    assert [r.getMessage() for r in caplog.records] == [f"job.json: {w}" for w in job.warnings]
    rc = job.reader.config
    assert isinstance(rc, MysqlReaderConfig) and rc.fetchSize == 10  # the real key still wins


def test_accepted_but_unused_keys_do_not_warn() -> None:
    doc = mysql_doc()
    doc["job"]["content"][0]["reader"]["parameter"].update(
        {"requestAccumulatorInterval": 2, "customSql": "", "startLocation": 20}
    )
    doc["job"]["setting"]["speed"]["rebalance"] = True
    doc["job"]["setting"]["log"].update({"isLogger": True, "path": "/tmp", "pattern": "%m"})
    doc["job"]["setting"]["kafka"] = {"schema.registry.url": "http://127.0.0.1:8081"}
    job = build_job(doc)
    assert job.warnings == []
    assert job.reader.config.startLocation == "20"  # type: ignore[attr-defined]
    assert job.setting.kafka.schema_registry_url == "http://127.0.0.1:8081"


def test_config_warnings_from_whole_job_checks() -> None:
    doc = mysql_doc()
    doc["job"]["content"][0]["reader"]["parameter"]["splitPk"] = ""
    doc["job"]["setting"]["kafka"] = {"partitions": 2}
    job = build_job(doc)
    assert job.warnings == [
        f"{READER}.parameter: 3 reader channels but no splitPk: without a split column a table "
        "is read by one channel",
        "job.setting.kafka.partitions: 2 partitions for 3 writer channels; the extra writers "
        "stay idle",
    ]


# ---- passwords -----------------------------------------------------------------------------


def secret_doc() -> dict[str, Any]:
    doc = mysql_doc()
    for side in ("reader", "writer"):
        doc["job"]["content"][0][side]["parameter"]["password"] = SECRET
    return doc


def test_password_never_printed() -> None:
    job = build_job(secret_doc())
    assert job.reader.config.password.get_secret_value() == SECRET  # type: ignore[attr-defined]
    shown = [
        repr(job),
        str(job),
        repr(job.reader.config),
        job.model_dump_json(),
        json.dumps(job.redacted()),
        str(job.model_dump()),
    ]
    for text in shown:
        assert SECRET not in text
    assert job.redacted()["job"]["content"][0]["reader"]["parameter"]["password"] == "**********"


@pytest.mark.parametrize("bad", [[SECRET], {"value": SECRET}, True])
def test_error_on_password_does_not_echo_it(bad: object) -> None:
    doc = secret_doc()
    doc["job"]["content"][0]["reader"]["parameter"]["password"] = bad
    doc["job"]["content"][0]["writer"]["parameter"]["writeMode"] = "upsert"  # a second error
    with pytest.raises(JobConfigError) as info:
        build_job(doc)
    assert f"{READER}.parameter.password: expected a string" in info.value.problems
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


def test_password_in_other_errors_and_warnings_is_not_echoed() -> None:
    doc = secret_doc()
    param = doc["job"]["content"][0]["reader"]["parameter"]
    param["pasword"] = SECRET  # misspelt: warned by key, value dropped
    param["connection"][0]["jdbcUrl"] = [f"jdbc:mysql://root:{SECRET}@h/db"]
    with pytest.raises(JobConfigError) as info:
        build_job(doc)
    assert "carries credentials" in str(info.value)
    assert SECRET not in str(info.value)
    del param["connection"][0]["jdbcUrl"]
    param["connection"][0]["jdbcUrl"] = "jdbc:mysql://h/db"
    job = build_job(doc)
    assert job.warnings == [
        f"{READER}.parameter.pasword: unknown key, ignored (did you mean password?)"
    ]
    assert SECRET not in repr(job) + json.dumps(job.redacted())


def test_numeric_password_is_taken_as_text() -> None:
    doc = mysql_doc()
    doc["job"]["content"][0]["reader"]["parameter"]["password"] = 123456
    job = build_job(doc)
    assert job.reader.config.password.get_secret_value() == "123456"  # type: ignore[attr-defined]


# ---- channels, names, plugins ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("speed", "readers", "writers"),
    [
        ({}, 1, 1),
        ({"channel": 4}, 4, 4),
        ({"channel": 4, "readerChannel": 2}, 2, 4),
        ({"channel": 4, "writerChannel": 8}, 4, 8),
        ({"readerChannel": 3, "writerChannel": 5}, 3, 5),
    ],
)
def test_channel_derivation(speed: dict[str, int], readers: int, writers: int) -> None:
    doc = stream_doc()
    doc["job"]["setting"] = {"speed": speed}
    setting = build_job(doc).setting
    assert (setting.speed.reader_channels, setting.speed.writer_channels) == (readers, writers)
    assert setting.partitions == writers


def test_defaults_and_names() -> None:
    job = build_job(stream_doc())
    assert job.name == "job"
    assert job.setting.speed.bytes == 0 and job.setting.speed.records == 0
    assert job.setting.restore.checkpoint_interval == 5000
    assert job.setting.kafka.topic_prefix == "sluice"
    assert parse_job(json.dumps(stream_doc()), origin="/x/nightly_copy.json").name == "nightly_copy"
    doc = stream_doc()
    doc["job"]["name"] = "orders"
    assert parse_job(json.dumps(doc), origin="/x/y.json").name == "orders"
    doc["job"]["name"] = ""
    assert "job.name: expected a non-empty string" in errors_of(doc)


def test_stream_slice_counts() -> None:
    config = build_job(stream_doc(sliceRecordCount=[4, 7])).reader.config
    assert isinstance(config, StreamReaderConfig)
    assert [config.records_for(i) for i in range(3)] == [4, 7, 7]
    doc = stream_doc(sliceRecordCount=[1, 2, 3])
    assert build_job(doc).warnings == [
        f"{READER}.parameter.sliceRecordCount: 3 counts for 1 reader channel; the extra "
        "counts are not generated"
    ]


class _FakeConfig(PluginConfig):
    pass


class FakeSource(Source):
    def check(self) -> None:
        pass

    def list_parts(self) -> list[str]:
        return []

    def build_part(self, part_id: str, task: str, resume_state: Any) -> Any:
        raise NotImplementedError


def test_plugin_registry_and_plugin_class(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = plugins.Plugin("fakereader", "reader", _FakeConfig, FakeSource)
    installed = plugins.InstalledPlugin(fake, "fakereader = tests:FAKE", "fake 1.0")
    monkeypatch.setitem(plugins.registry().plugins, "fakereader", installed)
    doc = stream_doc()
    doc["job"]["content"][0]["reader"] = {"name": "FakeReader", "parameter": {"x": 1}}
    job = build_job(doc)
    assert job.reader.name == "fakereader"
    assert job.warnings == [f"{READER}.parameter.x: unknown key, ignored"]
    assert plugins.plugin_class(job.reader) is FakeSource
    assert [p.name for p in plugins.registered("reader")] == [
        "binlogreader",
        "fakereader",
        "mysqlreader",
        "pgwalreader",
        "postgresqlreader",
        "streamreader",
    ]


def test_registered_config_models_resolve() -> None:
    for info in plugins.registered():
        assert issubclass(info.config_model, PluginConfig)
        assert isinstance(info.factory_class(), type)


def test_job_is_a_typed_model() -> None:
    job = load_job(MYSQL_EXAMPLE)
    assert isinstance(job, Job)
    with pytest.raises(ValueError):  # frozen: a validated job does not drift
        setattr(job.setting.speed, "channel", 5)  # noqa: B010
    schema = MysqlReaderConfig.model_json_schema()
    assert "fetchSize" in schema["properties"]


def test_with_parameter_revalidates_and_keeps_secrets_secret() -> None:
    job = load_job(MYSQL_EXAMPLE)
    changed = job.with_parameter("writer", password=SECRET, batchSize=10)
    wc = changed.writer.config
    assert isinstance(wc, MysqlWriterConfig)
    assert wc.password.get_secret_value() == SECRET and wc.batchSize == 10
    assert SECRET not in repr(changed)
    assert job.writer.config.password.get_secret_value() == ""  # type: ignore[attr-defined]
    assert changed.reader is job.reader or changed.reader == job.reader
    with pytest.raises(JobConfigError, match=r"writer\.parameter\.batchSize: expected a number"):
        job.with_parameter("writer", batchSize=0)
    with pytest.raises(TypeError, match="passwrd"):
        job.with_parameter("reader", passwrd="x")

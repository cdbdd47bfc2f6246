"""The HDFS sink's parts that need no server: its config (errors name the JSON path), file and
directory names, and the Hive text rendering of every value type."""

from __future__ import annotations

import base64
import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastavro import reader as avro_reader

from coordinator.job import JobConfigError, build_job
from schemas.avro_types import RowCodec
from schemas.row_binary import RowEnvelopeCodec, write_string
from schemas.table import Column, TableSchema
from sink_connectors.hdfs import names
from sink_connectors.hdfs.config import HdfsWriterConfig
from sink_connectors.hdfs.formats import (
    AvroFile,
    TextRenderer,
    avro_file_schema,
    codec_available,
    projected_table,
    render_time,
)

WRITER = "job.content[0].writer.parameter"


def job(**writer: Any) -> dict[str, Any]:
    parameter = {"defaultFS": "http://127.0.0.1:9870", "path": "/warehouse/t"} | writer
    return {
        "job": {
            "content": [
                {
                    "reader": {
                        "name": "streamreader",
                        "parameter": {
                            "column": [{"name": "id", "type": "id"}],
                            "sliceRecordCount": 1,
                        },
                    },
                    "writer": {"name": "hdfswriter", "parameter": parameter},
                }
            ]
        }
    }


def config(**writer: Any) -> HdfsWriterConfig:
    cfg = build_job(job(**writer)).writer.config
    assert isinstance(cfg, HdfsWriterConfig)
    return cfg


def problems(**writer: Any) -> list[str]:
    with pytest.raises(JobConfigError) as info:
        build_job(job(**writer))
    return info.value.problems


# -- config ---------------------------------------------------------------------------------
def test_defaults_follow_flinkx() -> None:
    cfg = config()
    assert cfg.fileType == "text"
    assert cfg.fieldDelimiter == "\x01"
    assert cfg.compress == "none"
    assert cfg.writeMode == "append"
    assert cfg.maxFileSize == 1024**3
    assert cfg.target_dir == "/warehouse/t"
    assert cfg.file_extension == ".txt"
    assert config(fileType="avro").compress == "null"


def test_file_name_is_a_sub_directory_as_in_flinkx() -> None:
    assert config(fileName="pt=2024-01-01").target_dir == "/warehouse/t/pt=2024-01-01"
    assert config(path="hdfs://nn:8020/a/b/").target_dir == "/a/b"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"fileType": "orc"}, f'{WRITER}.fileType: expected one of text, avro, got "orc"'),
        ({"path": "warehouse/t"}, f"{WRITER}.path: expected an absolute HDFS path"),
        ({"path": "/a/../b"}, f"{WRITER}.path: '..' is not allowed"),
        ({"fileName": "../x"}, f"{WRITER}.fileName: expected a relative directory name"),
        ({"compress": "snappy"}, f"{WRITER}.compress: expected one of gzip, none for fileType"),
        (
            {"fileType": "avro", "compress": "gzip"},
            f"{WRITER}.compress: expected one of null, deflate, snappy for fileType avro",
        ),
        ({"writeMode": "truncate"}, f"{WRITER}.writeMode: expected one of append, overwrite"),
        ({"fieldDelimiter": "ab"}, f"{WRITER}.fieldDelimiter: expected one character"),
        ({"fieldDelimiter": "\n"}, f"{WRITER}.fieldDelimiter: "),
        ({"maxFileSize": 0}, f"{WRITER}.maxFileSize: expected a number >= 1, got 0"),
        ({"partition": "table,month"}, f"{WRITER}.partition: expected table and/or date"),
        ({"defaultFS": "ftp://x"}, f"{WRITER}.defaultFS: expected http://host:9870"),
        ({"filePrefix": ".hidden"}, f"{WRITER}.filePrefix: expected letters, digits"),
        (
            {"path": "/", "writeMode": "overwrite"},
            f'{WRITER}.path: writeMode "overwrite" would empty the whole file system',
        ),
        (
            {"defaultFS": "hdfs://ns1", "hadoopConfig": {"dfs.ha.namenodes.ns1": "nn1"}},
            f"{WRITER}.defaultFS: nameservice ns1 has namenode nn1 but hadoopConfig has no "
            "dfs.namenode.http-address.ns1.nn1",
        ),
    ],
)
def test_bad_config_is_one_line_naming_the_key(change: dict[str, Any], expected: str) -> None:
    found = problems(**change)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found[0]
    assert "\n" not in found[0]


@pytest.mark.parametrize(
    ("written", "char"),
    [("\\001", "\x01"), ("\\u0001", "\x01"), ("\\t", "\t"), ("\t", "\t"), (",", ","), ("|", "|")],
)
def test_field_delimiter_escapes(written: str, char: str) -> None:
    assert config(fieldDelimiter=written).fieldDelimiter == char


def test_compress_is_case_insensitive_and_names_the_extension() -> None:
    cfg = config(compress="GZIP")
    assert (cfg.compress, cfg.file_extension) == ("gzip", ".txt.gz")
    assert config(fileType="AVRO", compress="Deflate").file_extension == ".avro"


def test_partition_accepts_a_string_or_a_list_in_order() -> None:
    assert config(partition="date, table").partition == ["date", "table"]
    assert config(partition=["table"]).partition == ["table"]
    assert config().partition == []


@pytest.mark.parametrize(
    ("writer", "urls"),
    [
        ({"defaultFS": "http://nn:9870"}, "http://nn:9870"),
        ({"defaultFS": "webhdfs://nn:50070"}, "http://nn:50070"),
        ({"defaultFS": "hdfs://nn:8020"}, "http://nn:9870"),
        ({"defaultFS": "hdfs://nn:8020", "webhdfsUrl": "http://nn:50070/"}, "http://nn:50070"),
        (
            {
                "defaultFS": "hdfs://ns1",
                "hadoopConfig": {
                    "dfs.nameservices": "ns1",
                    "dfs.ha.namenodes.ns1": "nn1,nn2",
                    "dfs.namenode.http-address.ns1.nn1": "a:9870",
                    "dfs.namenode.http-address.ns1.nn2": "b:9870",
                },
            },
            "http://a:9870;http://b:9870",
        ),
    ],
)
def test_webhdfs_url_from_default_fs(writer: dict[str, Any], urls: str) -> None:
    assert config(**writer).webhdfs_urls() == urls


def test_user_from_the_key_or_hadoop_config() -> None:
    assert config(user="etl").hdfs_user == "etl"
    assert config(hadoopConfig={"hadoop.user.name": "hive"}).hdfs_user == "hive"
    assert config().hdfs_user is None


def test_field_delimiter_with_avro_is_a_warning() -> None:
    assert any(
        "fieldDelimiter: ignored" in w
        for w in build_job(job(fileType="avro", fieldDelimiter=",")).warnings
    )


# -- names ----------------------------------------------------------------------------------
def test_names_are_deterministic_per_transaction() -> None:
    txn = "sl-0123456789-writer-2-deadbeef"
    assert names.final_name("part", txn, 3, ".txt.gz") == f"part-{txn}-00003.txt.gz"
    assert names.inprogress_name(txn, 3) == f".{txn}-00003.inprogress"
    assert names.manifest_name(txn) == f".{txn}.manifest"
    assert names.manifest_txn(names.manifest_name(txn)) == txn
    assert names.manifest_txn(names.manifest_name(txn) + names.TMP_SUFFIX) is None
    assert names.staging_dir("/w/t") == "/w/t/.sluice-staging"


def test_a_task_prefix_does_not_claim_another_tasks_files() -> None:
    assert names.belongs_to(".sl-x-writer-1-ab-00000.inprogress", "sl-x-writer-1-")
    assert not names.belongs_to(".sl-x-writer-10-ab-00000.inprogress", "sl-x-writer-1-")
    assert not names.belongs_to(".sl-y-writer-1-ab.manifest", "sl-x-writer-1-")


def test_partition_directories_use_the_utc_day_of_the_event() -> None:
    assert names.partition_dir([], "t", 0) == ""
    assert names.partition_dir(["table"], "orders", 0) == "table=orders"
    assert names.partition_dir(["table", "date"], "a/b=c", 0) == "table=a%2Fb%3Dc/dt=1970-01-01"
    assert names.partition_dir(["date"], "t", 1_709_251_199_000) == "dt=2024-02-29"
    assert names.partition_dir(["date", "table"], "t", 1_709_251_200_000) == "dt=2024-03-01/table=t"
    assert names.escape_partition_value("") == "__HIVE_DEFAULT_PARTITION__"


# -- text rendering -------------------------------------------------------------------------
def test_text_rendering_of_every_value_type() -> None:
    r = TextRenderer("\x01")
    row = (
        None,
        "",
        "a\x01b\\c\nd\re",
        -9223372036854775808,
        18446744073709551615,
        True,
        1.5,
        3.4028234663852886e38,
        Decimal("0E-30"),
        Decimal("-12.3400"),
        b"\x00\xff",
        date(2024, 2, 29),
        datetime(2024, 2, 29, 12, 34, 56, 789012),
        datetime(2024, 2, 29, 12, 34, 56),
        timedelta(hours=-838, minutes=-59, seconds=-59),
        timedelta(microseconds=-1),
        "0000-00-00",
        "\\N",
    )
    assert r.line(row).split("\x01") == [
        "\\N",
        "",
        "a\\",  # the escaped delimiter: a\<delim>b
        "b\\\\c\\nd\\re",
        "-9223372036854775808",
        "18446744073709551615",
        "true",
        "1.5",
        "3.4028234663852886e+38",
        "0.000000000000000000000000000000",
        "-12.3400",
        base64.b64encode(b"\x00\xff").decode(),
        "2024-02-29",
        "2024-02-29 12:34:56.789012",
        "2024-02-29 12:34:56",
        "-838:59:59",
        "-00:00:00.000001",
        "0000-00-00",
        "\\\\N\n",  # a string "\N" is not NULL
    ]


def test_every_line_is_one_line() -> None:
    line = TextRenderer(",").line(("x\ny", "a,b", None))
    assert line == "x\\ny,a\\,b,\\N\n"
    assert line.count("\n") == 1


def test_time_rendering_matches_mysql() -> None:
    assert render_time(timedelta(hours=838, minutes=59, seconds=59)) == "838:59:59"
    assert render_time(timedelta(0)) == "00:00:00"
    assert render_time(timedelta(seconds=1, microseconds=500)) == "00:00:01.000500"


# -- avro -----------------------------------------------------------------------------------
class MemoryUpload:
    """Stands in for an HDFS upload: keeps the bytes."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return self.out.write(data)

    def close(self) -> None:
        self.closed = True


SOURCE = TableSchema(
    "db",
    "t",
    (
        Column("id", "bigint", "bigint(20)", nullable=False),
        Column("amount", "decimal", "decimal(65,30)", numeric_precision=65, numeric_scale=30),
        Column("d", "date", "date"),
        Column("skip", "int", "int(11)"),
        Column("tm", "time", "time(6)"),
        Column("b", "blob", "blob"),
    ),
    ("id",),
)


@pytest.mark.parametrize("codec", ["null", "deflate", "snappy"])
def test_avro_container_reads_back_with_fastavro_exactly(codec: str) -> None:
    if not codec_available(codec):
        pytest.skip(f"{codec} not available here")
    table = projected_table(SOURCE, [0, 1, 2, 4, 5], ["key", "amount", "day", "tm", "b"])
    schema = avro_file_schema(table, with_op=True)
    assert [f["name"] for f in schema["fields"]] == ["key", "amount", "day", "tm", "b", "op"]
    rows = [
        (1, Decimal("1." + "1" * 30), date(2024, 2, 29), timedelta(hours=-838), b"\x00"),
        (2, None, "0000-00-00", None, None),
    ] * 20_000  # several blocks
    encoder = RowEnvelopeCodec(table)
    upload = MemoryUpload()
    avro = AvroFile(upload, schema, codec, sync=b"s" * 16)  # type: ignore[arg-type]
    avro.write([encoder.encode_values(r) + write_string("INSERT") for r in rows])
    avro.close()
    assert upload.closed and upload.size == len(upload.out.getvalue())
    found = avro_reader(io.BytesIO(upload.out.getvalue()))
    assert found.metadata["avro.codec"] == codec
    records = list(found)
    assert {r["op"] for r in records} == {"INSERT"}
    assert [RowCodec(table).from_avro(r) for r in records] == rows


def test_codecs() -> None:
    assert codec_available("null") and codec_available("deflate")
    assert not codec_available("no-such-codec")


def test_http_errors_are_described_in_a_few_words() -> None:
    from requests import ConnectionError as RequestsConnectionError

    from sink_connectors.hdfs.writer import describe

    refused = RequestsConnectionError(
        "HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /webhdfs/v1/"
        "x?op=GETFILESTATUS (Caused by NewConnectionError(\"HTTPConnection(host='127.0.0.1', "
        'port=1): Failed to establish a new connection: [Errno 111] Connection refused"))'
    )
    assert describe(refused) == "Connection refused"
    assert describe(ValueError("Permission denied: user=x")) == "Permission denied: user=x"

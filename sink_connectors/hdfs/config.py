"""``hdfswriter``'s ``parameter`` block, as FlinkX defines it, plus a few Sluice keys.

FlinkX's keys keep their meaning: files go to ``path``/``fileName`` (``fileName`` is a
directory, as in FlinkX and ChunJun), ``writeMode`` ``overwrite`` empties that directory
before a fresh run, ``fieldDelimiter`` defaults to Hive's ``\\001``. Sluice talks to HDFS over
WebHDFS (HTTP), so ``defaultFS`` may be the WebHDFS URL itself; an ``hdfs://`` URL is mapped
to the NameNode's WebHDFS port (``webhdfsUrl`` when it is not the default 9870, or the
``dfs.namenode.http-address`` entries of ``hadoopConfig`` for an HA nameservice).
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from coordinator.job.base import (
    ColumnList,
    NonEmptyStr,
    OptStr,
    PluginConfig,
    Problem,
    all_columns,
    column_names_of,
    one_of,
    shown,
)
from coordinator.job.setting import Setting

WEBHDFS_DEFAULT_PORT = 9870
TEXT_CODECS = ("gzip", "none")
AVRO_CODECS = ("null", "deflate", "snappy")
DEFAULT_CODEC = {"text": "none", "avro": "null"}
PARTITION_KINDS = ("table", "date")
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{1,3})\Z")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})\Z")
_NAMED_ESCAPES = {"\\t": "\t", "\\|": "|", "\\,": ","}
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")


def _absolute_path(value: str) -> str:
    """An absolute, normalised HDFS path. ``hdfs://nn:8020/a/b`` keeps only ``/a/b``."""
    text = value.strip()
    if "://" in text:
        text = urlsplit(text).path
    if not text.startswith("/"):
        raise ValueError(
            f"expected an absolute HDFS path like /user/hive/warehouse/db.db/t, got {shown(value)}"
        )
    if any(part == ".." for part in text.split("/")):
        raise ValueError(f"'..' is not allowed in an HDFS path, got {shown(value)}")
    return posixpath.normpath(text).replace("//", "/")


def _file_name(value: str | None) -> str | None:
    """FlinkX's ``fileName``: a sub-directory of ``path`` (one or more levels, relative)."""
    if value is None:
        return None
    text = value.strip().strip("/")
    if any(part in ("", ".", "..") for part in text.split("/")):
        raise ValueError(
            f"expected a relative directory name like pt=2024-01-01, got {shown(value)}"
        )
    return text


def _delimiter(value: object) -> object:
    """One character; FlinkX jobs also write it escaped: ``"\\001"``, ``"\\u0001"``, ``"\\t"``."""
    if not isinstance(value, str):
        return value
    if value in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[value]
    for pattern, base in ((_OCTAL_ESCAPE, 8), (_UNICODE_ESCAPE, 16)):
        m = pattern.match(value)
        if m:
            return chr(int(m.group(1), base))
    return value


def _check_delimiter(value: str) -> str:
    if len(value) != 1:
        raise ValueError(f'expected one character (or an escape like "\\001"), got {shown(value)}')
    if value in "\n\r\\":
        raise ValueError(f"{shown(value)} cannot separate fields: it is a line end or the escape")
    return value


def _partition(value: object) -> object:
    """``"table,date"`` or ``["table", "date"]`` → ``["table", "date"]``."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        return value
    out = []
    for item in items:
        name = item.strip().lower() if isinstance(item, str) else item
        if name == "":
            continue
        if name not in PARTITION_KINDS:
            raise ValueError(f"expected table and/or date, comma-separated, got {shown(item)}")
        if name in out:
            raise ValueError(f"{shown(name)} is listed twice")
        out.append(name)
    return out


class HdfsWriterConfig(PluginConfig):
    """Rows into files in an HDFS directory, committed with each checkpoint by renaming
    in-progress files to their final names (see :mod:`sink_connectors.hdfs.writer`)."""

    defaultFS: NonEmptyStr = Field(
        description="NameNode: http://host:9870 (WebHDFS) or hdfs://host:port (FlinkX)."
    )
    webhdfsUrl: OptStr = Field(
        default=None,
        description="Sluice addition: the WebHDFS URL(s), ';'-separated for HA, when defaultFS "
        "is an hdfs:// URL whose NameNode's HTTP port is not 9870.",
    )
    path: Annotated[NonEmptyStr, AfterValidator(_absolute_path)] = Field(
        description="Absolute HDFS directory the files go to."
    )
    fileName: Annotated[OptStr, AfterValidator(_file_name)] = Field(
        default=None, description="Sub-directory of path (FlinkX); files go to path/fileName."
    )
    filePrefix: NonEmptyStr = Field(
        default="part",
        description="Sluice addition: start of every file name, <filePrefix>-<txn>-<n>.<ext>.",
    )
    fileType: Annotated[Literal["text", "avro"], one_of("text", "avro")] = Field(
        default="text", description="text (Hive TEXTFILE) or avro (Avro container files)."
    )
    fieldDelimiter: Annotated[
        str, BeforeValidator(_delimiter), AfterValidator(_check_delimiter)
    ] = Field(default="\x01", description="Between fields of a text row; default \\001 (Hive).")
    compress: OptStr = Field(
        default=None,
        validate_default=True,  # the default depends on fileType: see _codec_of_file_type
        description="text: GZIP or NONE (default); avro: deflate, snappy or null (default).",
    )
    encoding: Annotated[Literal["utf-8"], one_of("utf-8", "utf8")] = Field(
        default="utf-8", description="Text files are UTF-8."
    )
    writeMode: Annotated[Literal["append", "overwrite"], one_of("append", "overwrite")] = Field(
        default="append",
        description="append: add files; overwrite: empty path/fileName once per fresh run.",
    )
    maxFileSize: int = Field(
        default=1024 * 1024 * 1024,
        ge=1,
        description="Bytes after which a file is closed and the next one started.",
    )
    column: ColumnList = Field(
        default_factory=all_columns,
        description='Columns written, by name or position of the reader\'s; ["*"] = all.',
    )
    hadoopConfig: dict[str, Any] = Field(
        default_factory=dict,
        description="core-site/hdfs-site keys; read: hadoop.user.name and the HA nameservice's "
        "dfs.ha.namenodes.* / dfs.namenode.http-address.*; the rest is accepted, unused.",
    )
    user: OptStr = Field(
        default=None,
        description="Sluice addition: HDFS user; default hadoopConfig hadoop.user.name, "
        "else the OS user.",
    )
    partition: Annotated[list[Literal["table", "date"]], BeforeValidator(_partition)] = Field(
        default_factory=list,
        description="Sluice addition: sub-directories table=<table> and/or dt=<yyyy-mm-dd> "
        '(UTC event time), e.g. "table,date".',
    )
    writeOp: bool = Field(
        default=False,
        description="Sluice addition: add a column op (SNAPSHOT/INSERT/UPDATE/DELETE) and "
        "write DELETE events (their before-image) instead of skipping them.",
    )

    @field_validator("compress")
    @classmethod
    def _codec_of_file_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        file_type = info.data.get("fileType")
        if file_type is None:  # fileType itself is invalid: reported there
            return value
        choices = TEXT_CODECS if file_type == "text" else AVRO_CODECS
        if value is None:
            return DEFAULT_CODEC[file_type]
        codec = value.strip().lower()
        if codec == "none" and file_type == "avro":
            codec = "null"
        if codec not in choices:
            raise ValueError(
                f"expected one of {', '.join(choices)} for fileType {file_type}, got {shown(value)}"
            )
        return codec

    @field_validator("filePrefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not _SAFE_NAME.match(value) or value.startswith((".", "_")):
            raise ValueError(
                "expected letters, digits, '.', '_' or '-', not starting with '.' or '_' "
                f"(Hive skips such files), got {shown(value)}"
            )
        return value

    def job_problems(self, setting: Setting) -> list[Problem]:
        problems = []
        try:
            self.webhdfs_urls()
        except ValueError as e:
            problems.append(Problem("defaultFS", str(e)))
        if self.writeMode == "overwrite" and self.target_dir == "/":
            problems.append(
                Problem("path", 'writeMode "overwrite" would empty the whole file system "/"')
            )
        if self.fileType == "avro" and "fieldDelimiter" in self.model_fields_set:
            problems.append(Problem("fieldDelimiter", "ignored for avro files", warning=True))
        return problems

    @property
    def column_names(self) -> list[str] | None:
        return column_names_of(self.column)

    @property
    def target_dir(self) -> str:
        """``path``/``fileName``: the directory this writer owns."""
        return posixpath.join(self.path, self.fileName) if self.fileName else self.path

    @property
    def hdfs_user(self) -> str | None:
        user = self.user or self.hadoopConfig.get("hadoop.user.name")
        return str(user) if user else None

    @property
    def file_extension(self) -> str:
        if self.fileType == "avro":
            return ".avro"
        return ".txt.gz" if self.compress == "gzip" else ".txt"

    def webhdfs_urls(self) -> str:
        """The WebHDFS URL(s) to use, ';'-separated (the ``hdfs`` client fails over between
        them). Raises ValueError with the reason when none can be derived."""
        if self.webhdfsUrl:
            return self.webhdfsUrl
        parts = urlsplit(self.defaultFS)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            return f"{scheme}://{parts.netloc}"
        if scheme == "webhdfs":
            return f"http://{parts.netloc}"
        if scheme != "hdfs" or not parts.hostname:
            raise ValueError(
                f"expected http://host:port (WebHDFS) or hdfs://host[:port], got "
                f"{shown(self.defaultFS)}"
            )
        nameservice = parts.hostname
        namenodes = self.hadoopConfig.get(f"dfs.ha.namenodes.{nameservice}")
        if namenodes:
            urls = []
            for nn in str(namenodes).split(","):
                key = f"dfs.namenode.http-address.{nameservice}.{nn.strip()}"
                address = self.hadoopConfig.get(key)
                if not address:
                    raise ValueError(
                        f"nameservice {nameservice} has namenode {nn.strip()} but hadoopConfig "
                        f"has no {key}; add it or set webhdfsUrl"
                    )
                urls.append(f"http://{address}")
            return ";".join(urls)
        return f"http://{parts.hostname}:{WEBHDFS_DEFAULT_PORT}"

    @field_validator("webhdfsUrl")
    @classmethod
    def _http_urls(cls, value: str | None) -> str | None:
        if value is None:
            return None
        urls = [u.strip().rstrip("/") for u in value.split(";") if u.strip()]
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(
                    f"expected http://host:port (';' between several), got {shown(url)}"
                )
        return ";".join(urls)

    @field_validator("defaultFS")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = urlsplit(value).scheme.lower()
        if scheme not in ("http", "https", "webhdfs", "hdfs") or not urlsplit(value).netloc:
            raise ValueError(
                f"expected http://host:9870 (WebHDFS) or hdfs://host[:port], got {shown(value)}"
            )
        return value.rstrip("/")

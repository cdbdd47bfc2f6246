"""``hdfswriter``: rows into text or Avro files in an HDFS directory, exactly once, through
WebHDFS, with in-progress files renamed to their final names at each checkpoint.

The two phases (see :mod:`sink_connectors.hdfs.names` for where files live):

* ``write`` streams rows into hidden in-progress files in the staging directory, one per
  partition directory and table schema, rolled at ``maxFileSize``;
* ``pre_commit`` closes them (the data is durable in HDFS once a create returns) and writes
  the transaction's manifest: which in-progress file becomes which final file, their sizes,
  and the Kafka offsets. It is written under a temporary name and renamed, so a manifest
  either exists whole or not at all. Durable and undecided, like ``XA PREPARE``;
* ``commit`` renames every in-progress file to its final name, then deletes the manifest.
  HDFS renames never overwrite, so a final file that already exists with the manifest's size
  is one an earlier attempt renamed: commit is idempotent;
* ``abort`` deletes the transaction's in-progress files (and its manifest, if any);
* ``recover`` finishes a crashed incarnation's manifests: committed in Kafka → rename, else
  delete; in-progress files without a manifest never reached pre-commit and are deleted.

Files are append-only, so UPDATE events write their after-image as a new row and DELETE
events are skipped (counted, logged), unless ``writeOp`` adds an ``op`` column and keeps them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from coordinator.errors import ConfigError, ConnectError, SluiceError
from schemas.errors import SerdeError
from schemas.events import Op, RowEvent
from schemas.row_binary import RowEnvelopeCodec, write_string
from schemas.table import TableSchema
from sink_connectors.base import (
    Rejected,
    Sink,
    SinkContext,
    SinkWriter,
    TwoPhaseSinkWriter,
    source_indexes,
)
from sink_connectors.hdfs import names
from sink_connectors.hdfs.formats import (
    OP_FIELD,
    AvroFile,
    HdfsUpload,
    RowFile,
    TextFile,
    TextRenderer,
    avro_file_schema,
    codec_available,
    projected_table,
)
from sink_connectors.hdfs.staging import FileEntry, StagingArea

log = logging.getLogger("sluice.sink.hdfs")
# The hdfs package logs every request at INFO; its errors reach us as exceptions.
logging.getLogger("hdfs").setLevel(logging.WARNING)


ProjectionKey = tuple[str, int, tuple[str, ...]]
"""A source table schema: qualified name, version, column names."""
FileKey = tuple[str, ProjectionKey]
"""An open file: partition directory and table schema."""


def describe(error: Exception) -> str:
    """An HTTP client error in a few words: requests nests the reason (``[Errno 111]
    Connection refused``) three exceptions deep in a 300-character message."""
    text = str(error)
    m = re.search(r"\[Errno -?\d+\] ([^\"')]+)", text)
    if m:
        return m.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    return text if len(text) <= 300 else text[:297] + "..."


@dataclass(frozen=True)
class Projection:
    """How the rows of one source table schema become rows of a file."""

    key: ProjectionKey
    table: str
    take: Callable[[tuple[object, ...]], tuple[object, ...]]
    schema: dict[str, Any] | None
    """The Avro record schema (avro files only)."""
    encoder: RowEnvelopeCodec | None
    """Encodes a row's values as that record (avro files only)."""


class HdfsSink(Sink):
    supports_precommit = True

    def __init__(self, config: Any, context: SinkContext) -> None:
        super().__init__(config, context)
        self.path = "job.content[0].writer.parameter"
        self.target: str = config.target_dir
        self.staging = names.staging_dir(self.target)

    def client(self) -> Any:
        from hdfs import InsecureClient

        return InsecureClient(self.config.webhdfs_urls(), user=self.config.hdfs_user, timeout=60)

    def check(self) -> None:
        """WebHDFS answers, the target is not a file, the Avro codec is available."""
        from hdfs.util import HdfsError
        from requests import RequestException

        url = self.config.webhdfs_urls()
        try:
            status = self.client().status(self.target, strict=False)
        except (HdfsError, RequestException) as e:
            raise ConnectError(
                f"{self.path}.defaultFS: WebHDFS at {url} does not answer: {describe(e)}"
            ) from None
        if status is not None and status["type"] != "DIRECTORY":
            raise ConfigError(f"{self.path}.path: {self.target} is a file, not a directory")
        if self.config.fileType == "avro" and not codec_available(self.config.compress):
            raise ConfigError(
                f'{self.path}.compress: Avro codec "{self.config.compress}" is not available '
                "here (snappy needs the cramjam package); use deflate or null"
            )

    def check_input(self, tables: list[TableSchema]) -> None:
        """Fail before any row moves if a source table cannot be written (columns, types)."""
        for table in tables:
            self.projection(table)

    def projection(self, source: TableSchema) -> Projection:
        cfg = self.config
        names_ = list(cfg.column_names or source.column_names)
        index = source_indexes(source, names_, self.path)
        if cfg.writeOp and OP_FIELD in names_:
            raise ConfigError(
                f'{self.path}.writeOp: a written column is already called "{OP_FIELD}"'
            )
        getter = itemgetter(*index)
        take: Callable[[tuple[object, ...]], tuple[object, ...]] = (
            getter if len(index) > 1 else (lambda row: (getter(row),))
        )
        table = projected_table(source, index, names_)
        avro = cfg.fileType == "avro"
        return Projection(
            key=(source.qualified_name, source.version, source.column_names),
            table=source.table,
            take=take,
            schema=avro_file_schema(table, cfg.writeOp) if avro else None,
            encoder=RowEnvelopeCodec(table) if avro else None,
        )

    def prepare_target(self) -> None:
        """Once per fresh run: ``overwrite`` empties the target directory (FlinkX); both
        modes make sure it exists."""
        client = self.client()
        try:
            if self.config.writeMode == "overwrite":
                log.info("writeMode overwrite: deleting everything in %s", self.target)
                client.delete(self.target, recursive=True)
            client.makedirs(self.target)
        except Exception as e:
            raise ConnectError(
                f"{self.path}.path: could not prepare {self.target} in HDFS "
                f"({self.config.webhdfs_urls()}): {describe(e)}"
            ) from e

    def finish_target(self) -> None:
        """Remove the staging directory if nothing is left in it (a concurrent job writing
        to the same directory keeps it: HDFS refuses to delete a non-empty one)."""
        from hdfs.util import HdfsError

        with contextlib.suppress(HdfsError):
            self.client().delete(self.staging, recursive=False)

    def build_writer(self, task_id: str) -> SinkWriter:
        return HdfsWriter(self, task_id)


class HdfsWriter(TwoPhaseSinkWriter):
    def __init__(self, sink: HdfsSink, task: str) -> None:
        self.sink = sink
        self.config = sink.config
        self.task = task
        self.client = sink.client()
        self.renderer = TextRenderer(self.config.fieldDelimiter)
        self.projections: dict[ProjectionKey, Projection] = {}
        self.open: dict[FileKey, tuple[FileEntry, RowFile]] = {}
        self.closed: list[FileEntry] = []
        self.txn = ""
        self.prepared = False
        self.committing = False
        self.deletes_skipped = 0
        self._partitions: dict[tuple[str, int], str] = {}
        self.staging = StagingArea(self.client, sink.target, self._io_error)

    # -- helpers --------------------------------------------------------------------------
    def _io_error(self, what: str, error: Exception) -> SluiceError:
        """HDFS or the network failed: worth a restart of the task (a ConnectError), which
        recovers from the last checkpoint."""
        return ConnectError(
            f"{self.sink.path}: {self.task} could not {what} in HDFS "
            f"({self.config.webhdfs_urls()}): {describe(error)}"
        )

    def _partition(self, event: RowEvent, projection: Projection) -> str:
        kinds = self.config.partition
        if not kinds:
            return ""
        # One string per table and UTC day, not a date formatting per row.
        key = (projection.table, event.ts_ms // 86_400_000 if "date" in kinds else 0)
        found = self._partitions.get(key)
        if found is None:
            found = self._partitions[key] = names.partition_dir(
                kinds, projection.table, event.ts_ms
            )
        return found

    def _open(self, partition: str, projection: Projection) -> tuple[FileEntry, RowFile]:
        n = len(self.closed) + len(self.open)
        cfg = self.config
        final_dir = posixpath.join(self.sink.target, partition) if partition else self.sink.target
        entry = FileEntry(
            inprogress=self.staging.path(names.inprogress_name(self.txn, n)),
            final=posixpath.join(
                final_dir, names.final_name(cfg.filePrefix, self.txn, n, cfg.file_extension)
            ),
        )
        upload = HdfsUpload(self.client, entry.inprogress)
        rowfile: RowFile
        if projection.schema is not None:
            # A sync marker derived from the file's name: the same rows, the same bytes.
            sync = hashlib.md5(entry.final.encode(), usedforsecurity=False).digest()
            rowfile = AvroFile(upload, projection.schema, cfg.compress, sync)
        else:
            rowfile = TextFile(upload, self.renderer, gzipped=cfg.compress == "gzip")
        return entry, rowfile

    def _close(self, key: FileKey) -> None:
        entry, rowfile = self.open.pop(key)
        rowfile.close()
        entry.size = rowfile.upload.size
        self.closed.append(entry)

    def _discard_all(self) -> None:
        for entry, rowfile in self.open.values():
            rowfile.upload.discard()
            self.closed.append(entry)
        self.open.clear()

    # -- the contract ---------------------------------------------------------------------
    def recover(
        self, txn_prefix: str, is_committed: Callable[[str], bool]
    ) -> list[tuple[str, bool]]:
        mine = self.staging.entries(txn_prefix)
        resolved = []
        for name in mine:
            txn = names.manifest_txn(name)
            if txn is None:
                continue
            files = self.staging.read_manifest(txn)
            committed = is_committed(txn)
            if committed:
                self.staging.commit(txn, files)
            else:
                self.staging.discard(txn, files)
            resolved.append((txn, committed))
        # What is left never reached a manifest: aborted before pre-commit, or a half-written
        # manifest (.tmp). Files already renamed or deleted above are simply gone.
        self.staging.delete([self.staging.path(n) for n in mine if not names.manifest_txn(n)])
        return resolved

    def begin(self, txn_id: str) -> None:
        self.txn = txn_id
        self.prepared = False
        self.committing = False
        self.open.clear()
        self.closed = []
        self.deletes_skipped = 0

    def write(self, events: list[RowEvent]) -> list[Rejected]:
        """Rows into the open in-progress files, one per partition directory and table
        schema. A value the Avro type of its column cannot hold is rejected (the runner sends
        it to the dirty-data topic); text files take every value."""
        rejected: list[Rejected] = []
        batches: dict[FileKey, list[object]] = {}
        write_op = self.config.writeOp
        for event in events:
            row = event.after
            if event.op is Op.DELETE:
                if not write_op:
                    self.deletes_skipped += 1
                    continue
                row = event.before
            assert row is not None
            projection = self._projection(event.table)
            values = projection.take(row)
            item: object = (*values, event.op.value) if write_op else values
            if projection.encoder is not None:
                try:
                    record = projection.encoder.encode_values(values)
                except SerdeError as e:
                    rejected.append(Rejected(event, str(e)))
                    continue
                item = record + write_string(event.op.value) if write_op else record
            key = (self._partition(event, projection), projection.key)
            batch = batches.get(key)
            if batch is None:
                batch = batches[key] = []
                if key not in self.open:
                    try:
                        self.open[key] = self._open(key[0], projection)
                    except Exception as e:
                        raise self._io_error("create an in-progress file", e) from e
            batch.append(item)
        for key, rows in batches.items():
            entry, rowfile = self.open[key]
            try:
                rowfile.write(rows)
                entry.rows += len(rows)
                if rowfile.upload.size >= self.config.maxFileSize:
                    self._close(key)
            except Exception as e:
                raise self._io_error(f"write {entry.inprogress}", e) from e
        return rejected

    def _projection(self, source: TableSchema) -> Projection:
        key = (source.qualified_name, source.version, source.column_names)
        projection = self.projections.get(key)
        if projection is None:
            projection = self.projections[key] = self.sink.projection(source)
        return projection

    def pre_commit(self, txn_id: str, offsets: Mapping[str, int]) -> None:
        try:
            for key in list(self.open):
                self._close(key)
        except Exception as e:
            raise self._io_error("close the in-progress files", e) from e
        if self.deletes_skipped:
            log.info(
                "%s: %s: %d DELETE events not written (files are append-only; writeOp keeps "
                "them as rows with op=DELETE)",
                self.task,
                txn_id,
                self.deletes_skipped,
            )
        if not self.closed:
            return  # nothing to commit: no manifest, commit() has nothing to rename
        manifest = {
            "txn": txn_id,
            "task": self.task,
            "job": self.sink.context.job,
            "offsets": dict(offsets),
        }
        self.staging.write_manifest(manifest, self.closed)
        self.prepared = True

    def commit(self, txn_id: str) -> None:
        if not self.prepared:
            return
        # Decided in Kafka: from here on, nothing may delete these files. If a rename fails,
        # abort() leaves them and the next incarnation's recover() finishes the commit.
        self.committing = True
        self.staging.commit(txn_id, self.closed)
        self.prepared = False
        self.committing = False
        self.closed = []

    def abort(self) -> None:
        if self.committing:
            log.warning(
                "%s: %s committed in Kafka but not renamed yet; the next start finishes it",
                self.task,
                self.txn,
            )
            return
        try:
            self._discard_all()
            if self.txn:
                self.staging.discard(self.txn, self.closed)
        except Exception as e:  # recover() deletes them on the next start
            log.warning("%s: abort of %s: %s", self.task, self.txn, e)
        self.closed = []
        self.prepared = False

    def close(self) -> None:
        # Open uploads end with the process; their files are deleted by the next recover().
        self._discard_all()

"""The staging directory of an HDFS target and the file operations that decide a transaction:
write its manifest (pre-commit), rename its files (commit), delete them (abort), and find what
a crashed writer left (recover).

Each operation is safe to repeat, because a writer may die in the middle of any of them and
its next incarnation runs it again: deleting what is gone is no error, and a rename whose
target already exists with the recorded size was done by an earlier attempt.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from coordinator.errors import SluiceError
from sink_connectors.hdfs import names


@dataclass
class FileEntry:
    """One file of a transaction: where it is written, where it goes at commit."""

    inprogress: str
    final: str
    size: int = 0
    rows: int = 0


Fail = Callable[[str, Exception], SluiceError]
"""Turns "could not <what>" and the cause into the error the writer raises."""


class StagingArea:
    def __init__(self, client: Any, target: str, fail: Fail) -> None:
        self.client = client
        self.target = target
        self.dir = names.staging_dir(target)
        self.fail = fail
        self._made_dirs: set[str] = set()

    def path(self, name: str) -> str:
        return posixpath.join(self.dir, name)

    def manifest_path(self, txn: str) -> str:
        return self.path(names.manifest_name(txn))

    def entries(self, txn_prefix: str) -> list[str]:
        """Names in the staging directory of the transactions starting with ``txn_prefix``."""
        try:
            if self.client.status(self.dir, strict=False) is None:
                return []
            found = self.client.list(self.dir)
        except Exception as e:
            raise self.fail(f"list {self.dir}", e) from e
        return sorted(n for n in found if names.belongs_to(n, txn_prefix))

    def write_manifest(self, manifest: dict[str, Any], files: list[FileEntry]) -> None:
        """Durable and whole: written under a temporary name, then renamed (HDFS renames are
        atomic), so recovery never reads half a manifest."""
        path = self.manifest_path(manifest["txn"])
        doc = manifest | {"files": [asdict(f) for f in files]}
        try:
            self.client.write(path + names.TMP_SUFFIX, data=json.dumps(doc), overwrite=True)
            self.client.rename(path + names.TMP_SUFFIX, path)
        except Exception as e:
            raise self.fail(f"write the manifest {path}", e) from e

    def read_manifest(self, txn: str) -> list[FileEntry]:
        path = self.manifest_path(txn)
        try:
            with self.client.read(path) as reader:
                doc = json.loads(reader.read())
        except Exception as e:
            raise self.fail(f"read the manifest {path}", e) from e
        return [FileEntry(**f) for f in doc["files"]]

    def commit(self, txn: str, files: list[FileEntry]) -> None:
        """Rename every file to its final name, then drop the manifest."""
        for directory in sorted({posixpath.dirname(f.final) for f in files} - self._made_dirs):
            try:
                self.client.makedirs(directory)
            except Exception as e:
                raise self.fail(f"create {directory}", e) from e
            self._made_dirs.add(directory)
        for f in files:
            try:
                self.client.rename(f.inprogress, f.final)
            except Exception as e:
                if self._already_renamed(f):
                    continue
                raise self.fail(f"commit {txn}: rename {f.inprogress} to {f.final}", e) from e
        self.delete([self.manifest_path(txn)])

    def discard(self, txn: str, files: list[FileEntry]) -> None:
        """Delete the transaction's in-progress files and its manifest, whole or partial."""
        manifest = self.manifest_path(txn)
        self.delete([f.inprogress for f in files] + [manifest, manifest + names.TMP_SUFFIX])

    def _already_renamed(self, f: FileEntry) -> bool:
        try:
            final = self.client.status(f.final, strict=False)
            gone = self.client.status(f.inprogress, strict=False) is None
        except Exception:  # the rename's own error is the one worth reporting
            return False
        return bool(final is not None and final["length"] == f.size and gone)

    def delete(self, paths: list[str]) -> None:
        for path in paths:
            try:
                self.client.delete(path)  # False, not an error, when it is already gone
            except Exception as e:
                raise self.fail(f"delete {path}", e) from e

"""Errors raised by the ``schemas`` package: type mapping, serde and schema registries.

All are :class:`coordinator.errors.SluiceError`, so the CLI prints them on one line; each
message names the table/column, schema id, subject or registry URL involved.
"""

from __future__ import annotations

from coordinator.errors import SluiceError


class SchemaError(SluiceError):
    """Base of every error in ``schemas``."""


class UnsupportedColumnType(SchemaError):
    """A source column has a MySQL type Sluice cannot carry exactly (e.g. GEOMETRY)."""


class SerdeError(SchemaError):
    """A Kafka record cannot be encoded or decoded (bad magic byte, unknown schema, bad data)."""


class SchemaRegistryError(SchemaError):
    """The schema registry failed or refused a request."""


class SchemaNotFound(SchemaRegistryError):
    """No schema is registered under the requested id."""

    def __init__(self, schema_id: int, where: str) -> None:
        super().__init__(f"schema id {schema_id} is not registered in {where}")
        self.schema_id = schema_id


class SchemaIdCollision(SchemaRegistryError):
    """Two different schemas hash to the same 31-bit id in the topic registry."""

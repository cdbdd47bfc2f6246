"""Schema registries: where the Avro schema behind each record's schema id lives.

Every Kafka record Sluice writes starts with a schema id (Confluent wire format). Two
registries give out those ids:

* :class:`KafkaTopicSchemaRegistry` (the default) needs nothing but Kafka: the id is a hash
  of the schema, so every process computes the same id without asking anyone, and a
  compacted topic maps ids back to schemas for consumers.
* :class:`ConfluentSchemaRegistry` talks to a Confluent Schema Registry over REST, for
  deployments where other tools read Sluice's topics with Confluent deserializers.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from schemas.errors import SchemaIdCollision, SchemaNotFound, SchemaRegistryError
from schemas.kafka_registry import (
    DEFAULT_SCHEMA_TOPIC,
    KafkaTopicSchemaRegistry,
    canonical_json,
    schema_fingerprint_id,
)

__all__ = [
    "DEFAULT_SCHEMA_TOPIC",
    "ConfluentSchemaRegistry",
    "InMemorySchemaRegistry",
    "KafkaTopicSchemaRegistry",
    "SchemaRegistry",
    "canonical_json",
    "make_registry",
    "schema_fingerprint_id",
]


class SchemaRegistry(Protocol):
    """Maps Avro schemas to the int ids that prefix records, and back."""

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        """The id of ``schema``, registering it under ``subject`` first if needed.

        When this returns, any process using the same registry can :meth:`get` the id.
        """
        ...

    def get(self, schema_id: int) -> dict[str, Any]:
        """The schema registered under ``schema_id``; raises :class:`SchemaNotFound`."""
        ...


class ConfluentSchemaRegistry:
    """A Confluent Schema Registry over its REST API, with ids and schemas cached.

    Credentials may be given in the URL (``https://user:secret@host:8081``); they are sent
    as HTTP basic auth and never appear in error messages.
    """

    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        parts = urlsplit(url)
        self._auth: str | None = None
        if parts.username is not None:
            creds = f"{parts.username}:{parts.password or ''}".encode()
            self._auth = "Basic " + base64.b64encode(creds).decode()
            host = parts.netloc.rpartition("@")[2]
            parts = parts._replace(netloc=host)
        self.url = urlunsplit(parts).rstrip("/")
        self.timeout_s = timeout_s
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, str] = {}
        self._lock = threading.Lock()

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        text = canonical_json(schema)
        cached = self._ids.get((subject, text))
        if cached is not None:
            return cached
        answer = self._call(
            "POST", f"/subjects/{quote(subject, safe='')}/versions", {"schema": text}
        )
        schema_id = answer.get("id")
        if not isinstance(schema_id, int):
            raise SchemaRegistryError(f"{self.url}: registering {subject!r} gave no id: {answer}")
        with self._lock:
            self._ids[(subject, text)] = schema_id
            self._schemas[schema_id] = text
        return schema_id

    def get(self, schema_id: int) -> dict[str, Any]:
        text = self._schemas.get(schema_id)
        if text is None:
            answer = self._call("GET", f"/schemas/ids/{schema_id}", None, not_found=schema_id)
            text = answer.get("schema")
            if not isinstance(text, str):
                raise SchemaRegistryError(f"{self.url}: schema {schema_id} answer has no schema")
            with self._lock:
                self._schemas[schema_id] = text
        schema: dict[str, Any] = json.loads(text)
        return schema

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None, not_found: int | None = None
    ) -> dict[str, Any]:
        url = self.url + path
        headers = {"Accept": "application/vnd.schemaregistry.v1+json, application/json"}
        if body is not None:
            headers["Content-Type"] = "application/vnd.schemaregistry.v1+json"
        if self._auth:
            headers["Authorization"] = self._auth
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:300]
            if e.code == 404 and not_found is not None:
                raise SchemaNotFound(not_found, f"schema registry {self.url} ({detail})") from e
            raise SchemaRegistryError(
                f"schema registry {method} {url} answered HTTP {e.code} {e.reason}: {detail}"
            ) from e
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise SchemaRegistryError(f"schema registry {method} {url} failed: {e}") from e


class InMemorySchemaRegistry:
    """Same ids as :class:`KafkaTopicSchemaRegistry`, kept in one process: for unit tests."""

    def __init__(self) -> None:
        self.subjects: dict[str, set[int]] = {}
        self._texts: dict[int, str] = {}

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        text, schema_id = canonical_json(schema), schema_fingerprint_id(schema)
        if self._texts.setdefault(schema_id, text) != text:
            raise SchemaIdCollision(f"schema id {schema_id} ({subject}) is taken")
        self.subjects.setdefault(subject, set()).add(schema_id)
        return schema_id

    def get(self, schema_id: int) -> dict[str, Any]:
        if schema_id not in self._texts:
            raise SchemaNotFound(schema_id, "the in-memory registry")
        schema: dict[str, Any] = json.loads(self._texts[schema_id])
        return schema


def make_registry(bootstrap: str, schema_registry_url: str | None) -> SchemaRegistry:
    """The Confluent registry when a URL is configured, else the Kafka-topic registry."""
    if schema_registry_url:
        return ConfluentSchemaRegistry(schema_registry_url)
    return KafkaTopicSchemaRegistry(bootstrap)

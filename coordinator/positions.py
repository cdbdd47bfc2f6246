"""Source positions in the compacted ``sluice-offsets`` topic (Kafka Connect's offsets topic).

A reader task writes its position *inside the Kafka transaction* that carries the rows the
position covers, so after any crash the committed position and the committed rows agree.
Values are JSON, like Kafka Connect's, so operators can read and edit them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from coordinator.kafka_io import OFFSETS_TOPIC, latest_json_by_key, read_to_end


@dataclass
class TaskPosition:
    position: dict[str, str] = field(default_factory=dict)
    """What the source's ``snapshot()`` returned: resume right after it."""
    checkpoint: int = 0
    """Last barrier this reader wrote."""
    seq: int = 0
    """Sequence number of the last event written (event ids are ``task:seq``)."""
    done: bool = False
    """A bounded reader wrote its final barrier: nothing more to read."""
    final_offsets: dict[str, int] = field(default_factory=dict)
    """Partition → offset of this reader's final barrier there (for writers resuming)."""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskPosition:
        return cls(
            position=dict(data.get("position") or {}),
            checkpoint=int(data.get("checkpoint", 0)),
            seq=int(data.get("seq", 0)),
            done=bool(data.get("done", False)),
            final_offsets={str(k): int(v) for k, v in (data.get("final_offsets") or {}).items()},
        )


def load_positions(bootstrap: str, key_prefix: str) -> dict[str, TaskPosition]:
    """Committed positions whose key starts with ``key_prefix``, keyed by the rest of the key
    (the task id)."""
    return positions_in(read_to_end(bootstrap, OFFSETS_TOPIC), key_prefix)


def positions_in(
    records: Iterable[tuple[bytes | None, bytes | None, int, int]], key_prefix: str
) -> dict[str, TaskPosition]:
    """:func:`load_positions` of the records of ``sluice-offsets`` read already."""
    state = latest_json_by_key(records)
    return {
        k[len(key_prefix) :]: TaskPosition.from_json(v)
        for k, v in state.items()
        if k.startswith(key_prefix)
    }

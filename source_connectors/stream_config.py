"""``streamreader``'s ``parameter`` block: FlinkX's generated-rows test source.

Each column has a type (and optionally a constant ``value``); each reader channel generates
``sliceRecordCount`` rows. Sluice adds ``seed`` so that two runs generate the same rows, which
is what exactly-once tests compare against.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, NonNegativeInt, Tag

from coordinator.job.base import (
    TAG_PREFIX,
    FlinkxModel,
    JsonScalar,
    NonEmptyStr,
    PluginConfig,
    Problem,
    one_of,
)
from coordinator.job.setting import Setting

STREAM_TYPES = (
    "id",
    "int",
    "bigint",
    "string",
    "double",
    "decimal",
    "date",
    "datetime",
    "boolean",
    "bytes",
)
StreamType = Literal[
    "id", "int", "bigint", "string", "double", "decimal", "date", "datetime", "boolean", "bytes"
]


class StreamColumn(FlinkxModel):
    """A generated column. ``id`` counts up per channel (and is the primary key)."""

    name: NonEmptyStr
    type: Annotated[StreamType, one_of(*STREAM_TYPES)]
    value: JsonScalar = Field(default=None, description="A constant for every row instead of data.")


def _count_tag(value: object) -> str:
    return TAG_PREFIX + ("list" if isinstance(value, list) else "int")


SliceRecordCount = Annotated[
    Annotated[Annotated[list[NonNegativeInt], Field(min_length=1)], Tag(TAG_PREFIX + "list")]
    | Annotated[NonNegativeInt, Tag(TAG_PREFIX + "int")],
    Discriminator(_count_tag),
]


class StreamReaderConfig(PluginConfig):
    """Generates rows; bounded by ``sliceRecordCount``."""

    column: list[StreamColumn] = Field(min_length=1)
    sliceRecordCount: SliceRecordCount = Field(
        description="Rows per reader channel: one number for every channel, or a list by "
        "channel index (a short list repeats its last count)."
    )
    seed: int = Field(default=0, description="Sluice addition: seed of the generated values.")

    @property
    def column_names(self) -> list[str] | None:
        return [c.name for c in self.column]

    def records_for(self, channel: int) -> int:
        """Rows reader channel ``channel`` (0-based) generates."""
        counts = self.sliceRecordCount
        if isinstance(counts, int):
            return counts
        return counts[min(channel, len(counts) - 1)]

    def job_problems(self, setting: Setting) -> list[Problem]:
        counts, channels = self.sliceRecordCount, setting.speed.reader_channels
        if isinstance(counts, list) and len(counts) > channels:
            return [
                Problem(
                    "sliceRecordCount",
                    f"{len(counts)} counts for {channels} reader channel"
                    f"{'s' if channels > 1 else ''}; the extra counts are not generated",
                    warning=True,
                )
            ]
        return []

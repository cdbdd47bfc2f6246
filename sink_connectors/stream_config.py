"""``streamwriter``'s ``parameter`` block: FlinkX's test sink, which prints rows or drops them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from coordinator.job.base import PluginConfig, one_of


class StreamWriterConfig(PluginConfig):
    """Rows go to stdout (``print``) or nowhere; useful to measure a reader alone."""

    print: bool = Field(default=True, description="Print each row to stdout; false = discard.")
    format: (
        Annotated[Literal["json", "paving", "debezium"], one_of("json", "paving", "debezium")]
        | None
    ) = Field(
        default=None,
        description="Sluice addition: print rows in a kafkawriter format instead of "
        "{op, table, columns...}; default paving when the reader sets pavingData.",
    )

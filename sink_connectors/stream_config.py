"""``streamwriter``'s ``parameter`` block: FlinkX's test sink, which prints rows or drops them."""

from __future__ import annotations

from pydantic import Field

from coordinator.job.base import PluginConfig


class StreamWriterConfig(PluginConfig):
    """Rows go to stdout (``print``) or nowhere; useful to measure a reader alone."""

    print: bool = Field(default=True, description="Print each row to stdout; false = discard.")

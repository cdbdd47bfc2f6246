"""The job model: FlinkX job JSON parsed, validated and typed.

    from coordinator.job import load_job
    job = load_job("examples/mysql_to_mysql.json")
    job.reader.config.connection[0].table      # ['flink_test']
    job.setting.speed.reader_channels          # 3

Modules: :mod:`~coordinator.job.jsonc` (comments, trailing commas), :mod:`~.base` (the base
model and field types connector configs share), :mod:`~.setting` (``job.setting``),
:mod:`~.problems` (errors with JSON paths), :mod:`~.model` (:class:`Job` and the loaders).
"""

from coordinator.job.base import ColumnSpec, FlinkxModel, PluginConfig, Problem
from coordinator.job.model import Content, Job, PluginSpec, build_job, load_job, parse_job
from coordinator.job.problems import JobConfigError
from coordinator.job.setting import (
    ErrorLimit,
    KafkaSetting,
    LogSetting,
    Restore,
    Setting,
    Speed,
)

__all__ = [
    "ColumnSpec",
    "Content",
    "ErrorLimit",
    "FlinkxModel",
    "Job",
    "JobConfigError",
    "KafkaSetting",
    "LogSetting",
    "PluginConfig",
    "PluginSpec",
    "Problem",
    "Restore",
    "Setting",
    "Speed",
    "build_job",
    "load_job",
    "parse_job",
]

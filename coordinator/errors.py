"""Errors a user can act on. The CLI prints their message on one line and exits non-zero;
anything else is a bug and keeps its traceback."""

from __future__ import annotations


class SluiceError(Exception):
    """A problem with the user's input or environment, worded for the user.

    The message says what is wrong, where (job, task, table, JSON path, source position) and,
    when there is one, what to do about it.
    """

    exit_code = 2


class ConfigError(SluiceError):
    """The job JSON or a setting is invalid. Raised before anything is read or written."""


class PluginError(SluiceError):
    """An installed connector plugin cannot be used (its module fails to import, or it
    declares something that is not a connector). The message names its entry point and
    distribution."""


class ConnectError(SluiceError):
    """A server cannot be reached or refuses our credentials."""

    exit_code = 3


class TaskFailed(SluiceError):
    """A reader or writer task stopped on an error it could not retry."""

    exit_code = 4


class TransientError(SluiceError):
    """Worth another try: a lost connection, a deadlock, a broker away. The task stops and
    its supervisor starts it again from the last committed position."""

    exit_code = 5

"""The ``sluice`` command. Each sub-command lives with the code it drives; this module only
dispatches and turns a :class:`SluiceError` into one clear line and a non-zero exit."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from coordinator.errors import SluiceError

# (module, function adding the sub-command's parser). Imported lazily so that `sluice local`
# works before the Kafka/MySQL client libraries are even importable.
_COMMANDS: list[tuple[str, str]] = [
    ("coordinator.local.cli", "add_commands"),
    ("coordinator.run_cli", "add_commands"),
    ("coordinator.worker.cli", "add_commands"),
    ("coordinator.plugins_cli", "add_commands"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sluice",
        description="Move data between MySQL, Kafka and HDFS, exactly once, from FlinkX job JSON.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    import importlib

    for module_name, func_name in _COMMANDS:
        module = importlib.import_module(module_name)
        add: Callable[[argparse._SubParsersAction], None] = getattr(module, func_name)
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        rc = args.handler(args)
    except SluiceError as e:
        print(f"sluice: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("sluice: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())

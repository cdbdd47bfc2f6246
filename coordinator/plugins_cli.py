"""``sluice plugins``: the installed connectors, what each can do and the keys it reads."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import textwrap
from typing import Any

from coordinator.errors import PluginError
from coordinator.plugins import GROUP, MISSING_BUILTINS, InstalledPlugin, discover


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "plugins",
        help=f"list the connector plugins installed (entry points {GROUP!r})",
        description="Each plugin's name, kind, distribution, capabilities and config keys. "
        "A broken entry point is reported on stderr (exit 1); the others are still listed.",
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(handler=cmd_plugins)


def describe(p: InstalledPlugin) -> dict[str, Any]:
    """Everything ``sluice plugins`` shows of one plugin. Imports its config and factory, so
    raises :class:`PluginError` when they cannot be imported."""
    return {
        "name": p.name,
        "aliases": list(p.plugin.aliases),
        "kind": p.kind,
        "distribution": p.distribution,
        "entry_point": p.entry_point,
        "capabilities": {
            name: {"value": c.value, "note": c.note} for name, c in p.capabilities().items()
        },
        "keys": [
            {"key": k.key, "required": k.required, "description": k.description}
            for k in p.config_keys()
        ],
    }


def _text(d: dict[str, Any]) -> str:
    aliases = f" (also {', '.join(d['aliases'])})" if d["aliases"] else ""
    lines = [f"{d['name']}{aliases}: {d['kind']} from {d['distribution']}"]
    for name, c in d["capabilities"].items():
        value = c["note"] if c["value"] is None else ("yes" if c["value"] else "no")
        lines += textwrap.wrap(
            f"{name}: {value}", 100, initial_indent="  ", subsequent_indent="    "
        )
    keys = ", ".join(k["key"] + ("*" if k["required"] else "") for k in d["keys"])
    lines += textwrap.wrap(
        f"keys (* required): {keys or '(none)'}",
        width=100,
        initial_indent="  ",
        subsequent_indent="    ",
        break_on_hyphens=False,
    )
    return "\n".join(lines)


def cmd_plugins(args: argparse.Namespace) -> int:
    found = discover(importlib.metadata.entry_points(group=GROUP))
    problems = list(found.broken)
    if found.missing_builtins:
        problems.append(MISSING_BUILTINS)
    described: list[dict[str, Any]] = []
    for p in found.registered():
        try:
            described.append(describe(p))
        except PluginError as e:
            problems.append(str(e))
    if args.json:
        json.dump({"plugins": described, "broken": problems}, sys.stdout, indent=2)
        print()
    else:
        print("\n".join(_text(d) for d in described))
    for line in problems:
        print(f"sluice: error: {line}", file=sys.stderr)
    return 1 if problems else 0

"""Derive the compact Bot API facts file used by the sandbox server.

Reads the machine-readable Bot API specification scraped by PaulSonOfLars/telegram-bot-api-spec
(MIT licence) and writes ``bot/sandbox/botapi_spec.json``: for every method and type, the names,
types and required flags of its fields, with no description text.  For the members of a union
type (``BotCommandScopeChat`` in ``BotCommandScope``, ``InputMediaPhoto`` in ``InputMedia`` ...)
it also records the discriminating field and value (``"type": "chat"``), which the specification
states only in prose ("Scope type, must be chat").

Usage::

    python scripts/derive_botapi_spec.py [path/to/api.min.json] [--output path/to/out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INPUT = (REPO_ROOT / ".." / "shared" / "telegram-bot-api" / "api.min.json").resolve()
DEFAULT_OUTPUT = REPO_ROOT / "bot" / "sandbox" / "botapi_spec.json"

ORIGIN = "derived from PaulSonOfLars/telegram-bot-api-spec, MIT"

# "Scope type, must be chat", 'Type of the message origin, always "user"'
_DISCRIMINATOR = re.compile(r"(?:must be|always)\s+[\"“]?([a-z_]+)[\"”]?\s*$")


def _fields(raw_fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": f["name"], "types": list(f["types"]), "required": bool(f["required"])}
        for f in raw_fields
    ]


def _discriminator(raw_fields: list[dict[str, Any]]) -> dict[str, str] | None:
    for field in raw_fields[:1]:
        if field["name"] not in {"type", "status", "source"}:
            continue
        match = _DISCRIMINATOR.search(field.get("description", "").strip())
        if match:
            return {"field": field["name"], "value": match.group(1)}
    return None


def derive(api: dict[str, Any]) -> dict[str, Any]:
    """Return the compact spec for the parsed ``api.min.json`` document."""
    methods: dict[str, Any] = {}
    for name, method in sorted(api["methods"].items()):
        methods[name] = {
            "returns": list(method.get("returns", [])),
            "fields": _fields(method.get("fields", [])),
        }

    types: dict[str, Any] = {}
    for name, type_ in sorted(api["types"].items()):
        entry: dict[str, Any] = {}
        if "fields" in type_:
            entry["fields"] = _fields(type_["fields"])
        if "subtypes" in type_:
            entry["subtypes"] = list(type_["subtypes"])
        if "subtype_of" in type_:
            entry["subtype_of"] = list(type_["subtype_of"])
            discriminator = _discriminator(type_.get("fields", []))
            if discriminator is not None:
                entry["discriminator"] = discriminator
        types[name] = entry

    return {
        "origin": {
            "note": ORIGIN,
            "version": api.get("version", ""),
            "release_date": api.get("release_date", ""),
            "changelog": api.get("changelog", ""),
            "generator": "scripts/derive_botapi_spec.py",
        },
        "methods": methods,
        "types": types,
    }


def render(spec: dict[str, Any]) -> str:
    """Serialise ``spec`` with one method or type per line, so that diffs stay readable."""

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    lines = ["{", f' "origin": {dump(spec["origin"])},']
    for section in ("methods", "types"):
        entries = list(spec[section].items())
        lines.append(f' "{section}": {{')
        for index, (name, entry) in enumerate(entries):
            comma = "," if index < len(entries) - 1 else ""
            lines.append(f"  {dump(name)}: {dump(entry)}{comma}")
        lines.append("  }," if section == "methods" else "  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    api = json.loads(args.input.read_text(encoding="utf-8"))
    spec = derive(api)
    text = render(spec)
    args.output.write_text(text, encoding="utf-8")
    print(
        f"wrote {args.output} ({spec['origin']['version']}: "
        f"{len(spec['methods'])} methods, {len(spec['types'])} types)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

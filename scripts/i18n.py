"""Catalog maintenance.

    python scripts/i18n.py update        # extract messages, merge into every catalog
    python scripts/i18n.py fill FILE     # write translations from a JSON file, then check
    python scripts/i18n.py check         # list missing, untranslated, unused, bad placeholders,
                                         # and messages written so extraction cannot see them

FILE maps each msgid to its translations: {"msgid": {"zh_Hans": "…", "zh_Hant": "…", "en": "…"}}
(a plural msgid takes a list per locale).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bot.catalog_tools import check, fill, update


def main(argv: list[str]) -> int:
    action = argv[1] if len(argv) > 1 else "check"
    if action == "update":
        update()
    elif action == "fill":
        fill(json.loads(Path(argv[2]).read_text(encoding="utf-8")))
    problems = check()
    for kind in ("missing", "untranslated", "unused", "placeholders"):
        for locale, ids in getattr(problems, kind).items():
            for message in ids:
                print(f"{locale}: {kind}: {message!r}")
    for call in problems.unextracted:
        print(f"unextracted: {call}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

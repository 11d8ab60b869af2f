"""Run the end-to-end scenarios on two commits and compare what each left in its database.

    python scripts/compare_scenarios.py [OLD] [NEW]      # default: 8b6fb74 HEAD
    python scripts/compare_scenarios.py --compare-only --out DIR   # compare kept dumps again

Each commit is checked out in a temporary git worktree (removed afterwards) and its
``tests/e2e`` run without the browser test, with ``GRIDBOT_TEST_E2E_DUMP`` set: after each test,
``tests/e2e/scenario_dump.py`` writes the test's outbox rows, ticket events, audit rows and
tickets, normalised (no row ids or leases, upload paths without their uuid, times as offsets),
to ``<out>/<side>/<test>.json``. This checkout's copy of that hook is put into both trees, so
both sides are normalised alike, and an older tree that predates it loads it with ``-p``.

Then, test by test: the outbox as one sequence (the order rows were committed, all chats) and
chat by chat (each chat's order), the ticket events, the audit log and the tickets' final rows.
A column present on one side only (a new column) is left out of the comparison and listed once.
Exit status: 0 when every test compares equal, 1 when some differ or fail, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOOK = Path("tests/e2e/scenario_dump.py")
HOOK_MODULE = "tests.e2e.scenario_dump"
DEFAULT_OLD = "8b6fb74"  # the last commit before issue 17's restructuring
TABLES = ("outbox", "ticket_events", "audit", "tickets")
# an outbox row reads best with who, what and how it went first, and the payload last
OUTBOX_ORDER = (
    "chat_id",
    "person_id",
    "method",
    "ref",
    "edit_ref",
    "urgent",
    "status",
    "attempts",
    "last_error",
    "message_id",
    "created_at",
    "not_before",
    "expires_at",
    "sent_at",
)
OUTCOME = re.compile(r"^(FAILED|ERROR) (\S+)")


# -- running the scenarios -----------------------------------------------------------------------


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """A detached checkout of ``commit`` in a temporary directory, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="gridbot-compare-"))
    tree = base / "tree"
    git("worktree", "add", "--detach", str(tree), commit)
    try:
        yield tree
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True
        )
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Run:
    commit: str
    summary: str = ""
    failed: dict[str, str] = field(default_factory=dict)  # nodeid -> FAILED / ERROR

    @classmethod
    def from_log(cls, commit: str, log: Path) -> Run:
        run = cls(commit)
        if not log.exists():
            return run
        lines = log.read_text(encoding="utf-8").splitlines()
        run.summary = next((line for line in reversed(lines) if line.strip()), "").strip("= ")
        for line in lines:
            if match := OUTCOME.match(line):
                run.failed[match.group(2)] = match.group(1)
        return run


def run_side(commit: str, dumps: Path, log: Path, python: str, pytest_args: Sequence[str]) -> Run:
    sha = git("rev-parse", "--verify", f"{commit}^{{commit}}")
    shutil.rmtree(dumps, ignore_errors=True)
    dumps.mkdir(parents=True)
    with worktree(sha) as tree:
        shutil.copyfile(ROOT / HOOK, tree / HOOK)
        conftest = (tree / "tests/e2e/conftest.py").read_text(encoding="utf-8")
        plugin = [] if "scenario_dump" in conftest else ["-p", HOOK_MODULE]
        command = [
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *plugin,
            "-m",
            "not browser",
            "--ignore=tests/e2e/test_browser.py",
            "-rfE",
            *pytest_args,
            "tests/e2e",
        ]
        env = {**os.environ, "GRIDBOT_TEST_E2E_DUMP": str(dumps), "PYTHONPATH": str(tree)}
        env.pop("GRIDBOT_TEST_DATABASE_URL", None)
        print(f"== {commit} ({sha[:7]}): {' '.join(command[1:])}", flush=True)
        with log.open("w", encoding="utf-8") as out:
            subprocess.run(command, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT)
    run = Run.from_log(sha, log)
    print(f"   {run.summary}", flush=True)
    return run


# -- comparing --------------------------------------------------------------------------------


def load(directory: Path) -> dict[str, dict[str, Any]]:
    dumps: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        dump = json.loads(path.read_text(encoding="utf-8"))
        dumps[dump["nodeid"]] = dump
    return dumps


def columns(dumps: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for dump in dumps:
        for table in TABLES:
            for row in dump.get(table, []):
                seen[table].update(row)
    return seen


def render(row: dict[str, Any], table: str, drop: set[str]) -> str:
    """One row on one line; for the outbox in a fixed, readable key order."""
    row = _without(row, drop)
    keys = list(row)
    if table == "outbox":
        first = [k for k in OUTBOX_ORDER if k in keys]
        rest = sorted(k for k in keys if k not in first and k != "payload")
        keys = first + rest + (["payload"] if "payload" in keys else [])
    else:
        keys = sorted(keys)
    return json.dumps({k: row[k] for k in keys}, ensure_ascii=False)


def _without(row: dict[str, Any], drop: set[str]) -> dict[str, Any]:
    """``row`` without the fields named in ``drop`` (``payload.message_id`` reaches inside)."""
    row = json.loads(json.dumps(row))
    for name in drop:
        *path, last = name.split(".")
        inner: Any = row
        for part in path:
            inner = inner.get(part) if isinstance(inner, dict) else None
        if isinstance(inner, dict):
            inner.pop(last, None)
    return row


def changed_fields(old: str, new: str, prefix: str = "") -> list[str]:
    a, b = json.loads(old), json.loads(new)
    return _changes(a, b, prefix)


def _changes(a: Any, b: Any, path: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        found: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            found += _changes(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        return found
    if a == b:
        return []
    if isinstance(a, str) and isinstance(b, str):
        return [f"{path}: {_excerpt(a, b)}"]
    return [f"{path}: {_short(a)} -> {_short(b)}"]


def _excerpt(a: str, b: str, context: int = 15, limit: int = 120) -> str:
    """Where two texts part: the differing middle of each, with a little context around it."""
    prefix = len(os.path.commonprefix([a, b]))
    suffix = len(os.path.commonprefix([a[prefix:][::-1], b[prefix:][::-1]]))
    start = max(prefix - context, 0)

    def middle(text: str) -> str:
        end = min(len(text) - suffix + context, len(text))
        part = ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
        return _short(part, limit)

    return f"{middle(a)} -> {middle(b)}"


def _short(value: Any, limit: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diff(old: list[str], new: list[str], label: str, limit: int) -> list[str]:
    """A unified diff of two row sequences, each changed pair of rows followed by the fields
    that differ; at most ``limit`` lines."""
    if old == new:
        return []
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for group in matcher.get_grouped_opcodes(1):
        a0, a1, b0, b1 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ {label}: old rows {a0 + 1}-{a1}, new rows {b0 + 1}-{b1} @@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [f"  {line}" for line in old[i1:i2]]
                continue
            out += [f"- {line}" for line in old[i1:i2]]
            out += [f"+ {line}" for line in new[j1:j2]]
            if tag == "replace" and i2 - i1 == j2 - j1:
                for offset in range(i2 - i1):
                    changes = changed_fields(old[i1 + offset], new[j1 + offset])
                    out.append(f"  ~ old row {i1 + offset + 1}: " + "; ".join(changes))
    if len(out) > limit:
        out = out[:limit] + [f"  … {len(out) - limit} more lines"]
    return out


def describe(old: list[str], new: list[str]) -> str:
    """What kind of difference: rows missing or added, reordered, or which fields changed."""
    if sorted(old) == sorted(new):
        return "the same rows in another order"
    removed = added = changed = 0
    fields: set[str] = set()
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "replace" and i2 - i1 == j2 - j1:
            for a, b in zip(old[i1:i2], new[j1:j2], strict=True):
                changed += 1
                fields.update(c.split(":")[0] for c in changed_fields(a, b))
        elif tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    parts = []
    if changed:
        parts.append(f"{changed} rows changed in " + ", ".join(sorted(fields)))
    if removed:
        parts.append(f"{removed} rows only in old")
    if added:
        parts.append(f"{added} rows only in new")
    return "; ".join(parts)


@dataclass
class TestComparison:
    nodeid: str
    sections: dict[str, list[str]] = field(default_factory=dict)  # name -> diff lines
    kinds: dict[str, str] = field(default_factory=dict)  # name -> what kind of difference
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.sections and not self.notes


def compare_test(
    nodeid: str, old: dict[str, Any], new: dict[str, Any], drop: dict[str, set[str]], limit: int
) -> TestComparison:
    result = TestComparison(nodeid)
    old_out = [render(r, "outbox", drop["outbox"]) for r in old["outbox"]]
    new_out = [render(r, "outbox", drop["outbox"]) for r in new["outbox"]]
    by_chat_old, by_chat_new = _by_chat(old["outbox"], old_out), _by_chat(new["outbox"], new_out)
    chats_differing = []
    for chat in sorted(set(by_chat_old) | set(by_chat_new)):
        a, b = by_chat_old.get(chat, []), by_chat_new.get(chat, [])
        if lines := diff(a, b, f"chat {chat}", limit):
            chats_differing.append(chat)
            result.sections[f"outbox, chat {chat}"] = lines
            result.kinds[f"outbox, chat {chat}"] = describe(a, b)
    if global_diff := diff(old_out, new_out, "all chats", limit):
        name = "outbox, all chats in commit order"
        result.sections[name] = global_diff
        result.kinds[name] = describe(old_out, new_out)
        if not chats_differing:
            result.notes.append(
                "outbox: every chat's rows are identical, but the rows of different chats "
                "were committed in another order"
            )
    for table in TABLES[1:]:
        a = [render(r, table, drop[table]) for r in old.get(table, [])]
        b = [render(r, table, drop[table]) for r in new.get(table, [])]
        if lines := diff(a, b, table, limit):
            result.sections[table] = lines
            result.kinds[table] = describe(a, b)
    return result


def _by_chat(rows: list[dict[str, Any]], rendered: list[str]) -> dict[Any, list[str]]:
    chats: dict[Any, list[str]] = defaultdict(list)
    for row, line in zip(rows, rendered, strict=True):
        chats[row.get("chat_id")].append(line)
    return chats


def one_sided(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> tuple[dict[str, set[str]], list[str]]:
    """Columns present on one side only: left out of the comparison, described once."""
    old_columns, new_columns = columns(old.values()), columns(new.values())
    drop: dict[str, set[str]] = {}
    notes: list[str] = []
    for table in TABLES:
        only_old = old_columns[table] - new_columns[table]
        only_new = new_columns[table] - old_columns[table]
        drop[table] = only_old | only_new
        for side, names, dumps in (("old", only_old, old), ("new", only_new, new)):
            for name in sorted(names):
                notes.append(f"{table}.{name} only in {side}: {_distribution(dumps, table, name)}")
    return drop, notes


def _distribution(dumps: dict[str, dict[str, Any]], table: str, name: str) -> str:
    """How a one-sided column's values spread over the rows (and, for the outbox, methods)."""
    values: Counter[str] = Counter()
    methods: dict[str, Counter[str]] = defaultdict(Counter)
    for dump in dumps.values():
        for row in dump.get(table, []):
            value = json.dumps(row.get(name), ensure_ascii=False)
            values[value] += 1
            if "method" in row:
                urgent = "urgent " if row.get("urgent") else ""
                methods[value][f"{urgent}{row['method']}"] += 1
    parts = []
    for value, count in sorted(values.items()):
        top = ", ".join(f"{m} {n}" for m, n in methods[value].most_common(4))
        parts.append(f"{value}: {count} rows" + (f" ({top})" if top else ""))
    return "; ".join(parts)


def report(
    old: dict[str, dict[str, Any]],
    new: dict[str, dict[str, Any]],
    runs: tuple[Run, Run],
    limit: int,
    ignore: Sequence[str] = (),
) -> int:
    drop, column_notes = one_sided(old, new)
    for name in ignore:
        table, _, column = name.partition(".")
        if table not in drop or not column:
            raise SystemExit(
                f"--ignore {name}: expected one of {', '.join(TABLES)}, a dot, a field"
            )
        drop[table].add(column)
        column_notes.append(f"{name} ignored (--ignore)")
    if column_notes:
        print("\nColumns left out of every row below (present on one side only, or ignored):")
        for note in column_notes:
            print(f"  {note}")
    results = [
        compare_test(nodeid, old[nodeid], new[nodeid], drop, limit)
        for nodeid in sorted(set(old) & set(new))
    ]
    failures = {
        nodeid: f"{side}: {outcome}"
        for side, run in zip(("old", "new"), runs, strict=True)
        for nodeid, outcome in run.failed.items()
    }
    print("\nPer test:")
    for label, only in (("ONLY OLD ", set(old) - set(new)), ("ONLY NEW ", set(new) - set(old))):
        for nodeid in sorted(only):
            failed = f"  [{failures[nodeid]}]" if nodeid in failures else ""
            print(f"  {label}  {nodeid}{failed}")
    for result in results:
        state = "identical" if result.identical else "DIFFERS  "
        failed = f"  [{failures[result.nodeid]}]" if result.nodeid in failures else ""
        print(f"  {state}  {result.nodeid}{failed}")
        for name, kind in result.kinds.items():
            print(f"               {name}: {kind}")
    for nodeid in sorted(set(failures) - set(old) - set(new)):
        print(f"  NO DUMP    {nodeid}  [{failures[nodeid]}]")
    differing = [r for r in results if not r.identical]
    for result in differing:
        print(f"\n=== {result.nodeid}")
        for note in result.notes:
            print(f"  note: {note}")
        for name, lines in result.sections.items():
            print(f"--- {name}")
            print("\n".join(lines))
    identical = len(results) - len(differing)
    print(
        f"\n{identical} of {len(results)} tests identical, {len(differing)} differ; "
        f"{len(set(old) ^ set(new))} on one side only; {len(failures)} failed or errored."
    )
    return 0 if not differing and not failures and set(old) == set(new) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", nargs="?", default=DEFAULT_OLD)
    parser.add_argument("new", nargs="?", default="HEAD")
    parser.add_argument("--out", type=Path, help="keep dumps and logs here (default: /tmp/…)")
    parser.add_argument(
        "--compare-only", action="store_true", help="compare the dumps already in --out"
    )
    parser.add_argument("--python", default=sys.executable, help="the interpreter for pytest")
    parser.add_argument("--lines", type=int, default=60, help="diff lines shown per section")
    parser.add_argument("-k", dest="keyword", help="only the tests pytest -k selects")
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="TABLE.FIELD",
        help="leave a field out, e.g. outbox.message_id or outbox.payload.message_id",
    )
    args = parser.parse_args(argv)

    if args.compare_only:
        if args.out is None:
            parser.error("--compare-only needs --out")
        out = args.out
    else:
        out = args.out or Path(tempfile.mkdtemp(prefix="gridbot-scenarios-"))
    out.mkdir(parents=True, exist_ok=True)
    commits = out / "commits.json"
    if not args.compare_only:
        pytest_args = ["-k", args.keyword] if args.keyword else []
        old = run_side(args.old, out / "old", out / "old.log", args.python, pytest_args)
        new = run_side(args.new, out / "new", out / "new.log", args.python, pytest_args)
        commits.write_text(json.dumps({"old": old.commit, "new": new.commit}), encoding="utf-8")
    sides = json.loads(commits.read_text(encoding="utf-8")) if commits.exists() else {}
    runs = (
        Run.from_log(sides.get("old", "?"), out / "old.log"),
        Run.from_log(sides.get("new", "?"), out / "new.log"),
    )
    for side, run in zip(("old", "new"), runs, strict=True):
        print(f"{side} {run.commit}: {run.summary}")
    print(f"dumps and logs in {out}")
    return report(load(out / "old"), load(out / "new"), runs, args.lines, args.ignore)


if __name__ == "__main__":
    sys.exit(main())

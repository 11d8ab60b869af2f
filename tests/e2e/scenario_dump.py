"""What an end-to-end test left behind, written to a file for ``scripts/compare_scenarios.py``.

Opt in with ``GRIDBOT_TEST_E2E_DUMP=<dir>``: after each end-to-end test (the harness stopped), its
database's outbox rows, ticket events, audit rows and tickets go to ``<dir>/<test>.json``,
normalised so that two runs of the same scenario on two commits can be compared row by row.
Unset, the fixture does nothing.

This file imports only the standard library and pytest and reads the SQLite file with
:mod:`sqlite3`, so the comparison script can copy it into an older checkout that predates it
(and run it there with ``-p tests.e2e.scenario_dump``). Columns are read by name with
``SELECT *``: a column that exists on one side only (a new one) shows up as such.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ENV = "GRIDBOT_TEST_E2E_DUMP"
FORMAT = 1

# the machinery of a row, not what it says: left out
OUTBOX_SKIPPED = {"id", "lease_until"}
# times kept as offsets from the row's ``created_at`` (the others: from the test's start)
OUTBOX_RELATIVE = {"not_before", "expires_at", "sent_at"}
UPLOAD_NAME = re.compile(r"^[0-9a-f]{32}-")  # Replier.upload: "<uuid4 hex>-<filename>"
# bot.services.invites.new_token: random; numbered by first appearance in the test instead
INVITE_TOKEN = re.compile(r"(?<=inv_)[A-Za-z0-9_-]{32}")


@pytest.fixture(autouse=True)
def scenario_dump(request: pytest.FixtureRequest) -> Iterator[None]:
    target = os.environ.get(ENV)
    if not target or "e2e_database_url" not in request.fixturenames:
        yield
        return
    url = str(request.getfixturevalue("e2e_database_url"))
    start: datetime = request.getfixturevalue("clock").now()
    yield  # the test, then the harness's teardown: the bot has stopped
    database = Path(url.split(":///", 1)[1])
    if not database.exists():
        return
    dump = read_scenario(database, start)
    dump["nodeid"] = request.node.nodeid
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{file_name(request.node.nodeid)}.json").write_text(
        json.dumps(dump, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8"
    )


def file_name(nodeid: str) -> str:
    return re.sub(r"[^\w.\[\]-]+", "_", nodeid).strip("_")


def read_scenario(database: Path, start: datetime) -> dict[str, Any]:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    tokens: dict[str, str] = {}
    try:
        return {
            "format": FORMAT,
            "start": start.astimezone(UTC).isoformat(),
            "outbox": [_outbox_row(dict(r), start, tokens) for r in _rows(connection, "outbox")],
            "ticket_events": [
                _timed(dict(r), start, skip={"id"}) for r in _rows(connection, "ticket_event")
            ],
            "audit": [_timed(dict(r), start, skip={"id"}) for r in _rows(connection, "audit_log")],
            "tickets": [
                _timed(dict(r), start, skip={"version", "sla"})
                for r in _rows(connection, "ticket")
            ],
        }
    finally:
        connection.close()


def _rows(connection: sqlite3.Connection, table: str) -> list[sqlite3.Row]:
    exists = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if exists is None:
        return []
    return connection.execute(f'SELECT * FROM "{table}" ORDER BY id').fetchall()


def _outbox_row(row: dict[str, Any], start: datetime, tokens: dict[str, str]) -> dict[str, Any]:
    created = _parse_time(row.get("created_at"))
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in OUTBOX_SKIPPED:
            continue
        if key == "payload":
            out[key] = _normalise_payload(_json(value), tokens)
        elif key == "urgent":
            out[key] = bool(value)
        elif key in OUTBOX_RELATIVE:
            moment = _parse_time(value)
            out[key] = _offset(moment, created) if moment and created else None
        elif key == "created_at":
            out[key] = _offset(created, start) if created else None
        else:
            out[key] = value
    return out


def _timed(row: dict[str, Any], start: datetime, *, skip: set[str]) -> dict[str, Any]:
    """Times as offsets from the test's start; JSON columns decoded."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in skip:
            continue
        moment = _parse_time(value) if isinstance(value, str) else None
        if moment is not None:
            out[key] = _offset(moment, start)
        elif key == "data":
            out[key] = _json(value)
        else:
            out[key] = value
    return out


def _normalise_payload(payload: Any, tokens: dict[str, str]) -> Any:
    if isinstance(payload, dict):
        upload = payload.get("_upload")
        if isinstance(upload, dict) and "path" in upload:
            name = UPLOAD_NAME.sub("", Path(str(upload["path"])).name)
            payload = {**payload, "_upload": {**upload, "path": f"<files>/<uuid>-{name}"}}
        return {key: _normalise_payload(value, tokens) for key, value in payload.items()}
    if isinstance(payload, list):
        return [_normalise_payload(value, tokens) for value in payload]
    if isinstance(payload, str):
        return INVITE_TOKEN.sub(
            lambda m: tokens.setdefault(m[0], f"<token{len(tokens) + 1}>"), payload
        )
    return payload


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?$")


def _parse_time(value: Any) -> datetime | None:
    """SQLite keeps a UTC datetime as naive text (``models.types.UTCDateTime``)."""
    if not isinstance(value, str) or not TIME.match(value):
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _offset(moment: datetime, origin: datetime) -> str:
    seconds = (moment - origin).total_seconds()
    sign = "-" if seconds < 0 else "+"
    whole, fraction = divmod(abs(seconds), 1)
    days, rest = divmod(int(whole), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{days}d" if days else sign
    text += f"{hours:02d}:{minutes:02d}:{secs:02d}"
    if fraction:
        text += f".{round(fraction * 1_000_000):06d}".rstrip("0")
    return text

"""The files a digest carries (简报附件): the 红黑榜 charts (PNG) and the assessment workbook
(XLSX) of the recipient's grids, in the recipient's language.

The monthly digest to the centre carries, per grid it covers, the charts and the workbook of
the month it reports; the weekly one to heads the charts of their grids for the month the week
ended in (up to now while it runs). They are the same charts and sheets as ``/score`` and
``/score export`` (:mod:`bot.services.score_views`, :mod:`bot.services.assessment_export`).

**Building them.** The figures are read first; drawing and the workbook run in worker threads
(:func:`bot.services.charts.render`, :func:`asyncio.to_thread`), and the files are written to
disk by :func:`bot.services.outbox.stage_file` — all before the digest queues its first row,
so no chart is drawn while the run holds the database's write lock. A grid's files are built
once per language, however many recipients share them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import gettext_for
from bot.services import assessment_export, charts, outbox, score_views, scorecards
from bot.services.assessment_policy import current_policy
from bot.services.periods import Period
from models import AuditLog, Grid, OutboxLane, OutboxMessage, Person


@dataclass(frozen=True)
class Attachment:
    """One generated file for one chat, staged on disk."""

    method: str  # sendPhoto or sendDocument
    field: str  # photo or document
    path: Path
    filename: str
    caption: str  # HTML


@dataclass(frozen=True)
class Built:
    """A grid's files in one language, as bytes (staged per recipient)."""

    charts: tuple[bytes, ...]
    workbook: tuple[bytes, str] | None
    caption: str


async def build(
    session: AsyncSession,
    grids: Sequence[Grid],
    period: Period,
    locales: Iterable[str],
    *,
    now: datetime,
    tz: tzinfo,
    workbook: bool,
) -> dict[tuple[int, str], Built]:
    """Each grid's ranking for ``period``, drawn (and its workbook written) in each of
    ``locales``: keyed by (grid id, locale)."""
    policy = await current_policy(session)
    wanted = sorted(set(locales))
    built: dict[tuple[int, str], Built] = {}
    for grid in {g.id: g for g in grids if g.id is not None}.values():
        assert grid.id is not None
        ranking = await scorecards.ranking(session, grid, period, now=now, tz=tz, policy=policy)
        for locale in wanted:
            pngs = tuple(
                [
                    await charts.render(chart)
                    for chart in score_views.charts_for(ranking, locale, tz)
                ]
            )
            book = None
            if workbook:
                sheets = assessment_export.tables(ranking, policy, partial(gettext_for, locale))
                data = await asyncio.to_thread(assessment_export.write, sheets)
                book = (data, assessment_export.file_name(ranking))
            built[(grid.id, locale)] = Built(pngs, book, score_views.caption(ranking, locale, tz))
    return built


async def stage(
    built: dict[tuple[int, str], Built], grids: Sequence[Grid], locale: str, files_dir: Path
) -> list[Attachment]:
    """One recipient's files, written to disk (each row deletes its own file once sent)."""
    staged: list[Attachment] = []
    for grid in grids:
        files = built.get((grid.id or 0, locale))
        if files is None:
            continue
        for png in files.charts:
            path = await outbox.stage_file(files_dir, png, "score.png")
            staged.append(Attachment("sendPhoto", "photo", path, "score.png", files.caption))
        if files.workbook is not None:
            data, name = files.workbook
            path = await outbox.stage_file(files_dir, data, name)
            staged.append(Attachment("sendDocument", "document", path, name, files.caption))
    return staged


def deliver(
    session: AsyncSession,
    person: Person,
    attachments: Sequence[Attachment],
    *,
    ref: str,
    now: datetime,
    period: Period,
) -> list[OutboxMessage]:
    """Queue the staged files after the digest's text (``ref`` is the text's): not urgent,
    named ``<ref>#file<n>``. A workbook sent is audited like ``/score export``."""
    assert person.telegram_id is not None
    rows = []
    for index, file in enumerate(attachments, start=1):
        rows.append(
            outbox.enqueue(
                session,
                chat_id=person.telegram_id,
                method=file.method,
                payload=outbox.file_payload(
                    person.telegram_id, file.field, file.path, file.filename, file.caption
                ),
                now=now,
                person_id=person.id,
                ref=f"{ref}#file{index}",
                urgent=False,
                lane=OutboxLane.BULK,
            )
        )
        if file.method == "sendDocument":
            session.add(
                AuditLog(
                    at=now,
                    actor_id=person.id,
                    action="export_assessment",
                    object_type="digest",
                    object_id=person.id,
                    detail=f"{period.kind.value} {period.start.isoformat()} {file.filename}",
                )
            )
    return rows

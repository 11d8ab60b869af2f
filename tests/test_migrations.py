"""The migrations create exactly the tables the models describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import models
from bot import migrate


async def test_models_match_migrations(engine: AsyncEngine) -> None:
    def diff(sync_connection: object) -> list[object]:
        context = MigrationContext.configure(
            sync_connection,  # type: ignore[arg-type]
            opts={"compare_type": True, "target_metadata": models.metadata},
        )
        return list(compare_metadata(context, models.metadata))

    async with engine.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []


async def test_database_is_at_head(engine: AsyncEngine) -> None:
    assert await migrate.is_up_to_date(engine)
    assert migrate.head_revision() is not None


async def test_sqlite_table_options_match_models(engine: AsyncEngine) -> None:
    """``compare_metadata`` does not look at table options: ``WITHOUT ROWID`` is checked here
    (a batch rebuild that forgets ``table_kwargs`` would drop it without a word)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("WITHOUT ROWID is an SQLite table option")
    expected = {
        table.name
        for table in models.metadata.sorted_tables
        if not table.dialect_options["sqlite"]["with_rowid"]
    }
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        )
        found = {name for name, sql in rows if sql and "WITHOUT ROWID" in sql.upper()}
    assert "visit_tally" in expected
    assert found == expected

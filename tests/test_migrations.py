"""The migrations create exactly the tables the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
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

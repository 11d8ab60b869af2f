"""``bench/webhooks.py`` stays runnable: one polling process on SQLite and one webhook worker
on PostgreSQL and Redis behind the proxy, residents running /report for a moment. Figures are
printed, never asserted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bench import webhooks

pytestmark = pytest.mark.e2e


async def test_the_webhook_bench_runs_both_setups_end_to_end(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    server = make_url(pg_url)
    bench_url = server.set(database=f"{server.database}_wb").render_as_string(hide_password=False)
    figures = tmp_path / "figures.json"
    args = webhooks.parse_args(
        ["--quick", "--workers", "1", "--database-url", bench_url, "--redis-url", redis_url]
        + ["--residents", "6", "--rate", "4", "--duration", "1.5", "--json", str(figures)]
    )
    args.sizes = replace(args.sizes, warm_up=0.5, idle_seconds=0.5)

    result = await webhooks.run(args)

    assert [s.name for s in result.setups] == ["1 polling (SQLite)", "1 webhook (PostgreSQL)"]
    for setup in result.setups:
        (main,) = setup.runs
        assert main["answered"] > 0 and main["latencies"].failed == 0, setup.name
    assert "1 webhook (PostgreSQL)" in result.table
    assert figures.exists()


def test_the_arguments_are_checked() -> None:
    with pytest.raises(SystemExit):
        webhooks.parse_args(["--workers", "0,2"])
    with pytest.raises(SystemExit):
        webhooks.parse_args(["--database-url", "postgresql+asyncpg://postgres@127.0.0.1/test"])
    with pytest.raises(SystemExit):
        webhooks.parse_args(["--database-url", "sqlite+aiosqlite:///x.db"])
    with pytest.raises(SystemExit):
        webhooks.parse_args(["--rate", "-1"])
    quick = webhooks.parse_args(["--quick", "--workers", "3,1,1", "--rate", "7"])
    assert quick.workers == (1, 3) and quick.sizes.rate == 7

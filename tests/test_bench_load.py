"""``bench/load.py`` stays runnable: its cheapest scenario at a tiny size — the real bot (in
this process, to start quickly) against the sandbox, residents running /report. Figures are
printed, never asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import load

pytestmark = pytest.mark.e2e


async def test_the_load_bench_runs_a_scenario_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRIDBOT_BENCH_DATABASE_URL", raising=False)  # SQLite, in a temp folder
    figures = tmp_path / "figures.json"
    args = load.parse_args(
        ["--quick", "--scenario", "d", "--residents", "27", "--rate", "4", "--duration", "2"]
        + ["--bot-in-process", "--json", str(figures)]
    )

    result = await load.run(args)

    hygiene = result.figures["d"]
    assert hygiene["backend"] == "sqlite"
    assert hygiene["steps"] > 0 and hygiene["failed"] == 0  # every resident got their replies
    assert hygiene["deadlocks"] == 0
    assert [row.scenario for row in result.rows] == ["d", "d"]
    assert figures.exists()


def test_the_scenarios_and_sizes_are_checked() -> None:
    with pytest.raises(SystemExit):
        load.parse_args(["--scenario", "a,z"])
    with pytest.raises(SystemExit):
        load.parse_args(["--quick", "--workers", "10", "--households", "5"])
    with pytest.raises(SystemExit):
        load.parse_args(["--knee-rates", "0,-5"])
    quick = load.parse_args(["--quick", "--scenario", "f,c,c", "--fanout", "20"])
    assert quick.scenarios == ["c", "f"] and quick.sizes.fanout == 20

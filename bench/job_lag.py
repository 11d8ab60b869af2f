"""One scheduler job alone on a city: how late a 10 ms ticker wakes while it runs.

The city of ``bench/load.py`` (its demo community, residents and city, at the sizes given) is
loaded into ``--sqlite-file`` once and copied afresh for each run; the bot is built as
``gridbot run`` builds it (``build_app``, its reader sessions) but not started: no polling, no
outbox sender, no residents. Its start-up heap is frozen (``gc.freeze``; ``--no-freeze``: not)
to show what the collector's full passes over it cost the job; the bot itself does not freeze
(it made replies slower in ``bench.load`` (c): bench/README). The job then runs once as the
scheduler runs it, and the figures are the loop lag (max, p99), the job's time and CPU, and
the garbage collector's passes by generation (count, longest). With ``BENCH_LAG_PROFILE=FILE``
the loop thread's stack is sampled whenever the ticker is late, as in ``bench.load``.

    .venv/bin/python -m bench.job_lag --households 150000 --workers 6000
    .venv/bin/python -m bench.job_lag --job monthly_indicators --sqlite-file /tmp/city.db
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import load
from bench.load_bot import LagSampler, RunningClock, percentile
from bot import migrate

JOBS = ("daily_task_push", "monthly_indicators")
TICK = 0.010


async def build_city(path: Path, households: int, workers: int) -> None:
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate.upgrade, url)
    await load.load_base(url, load.FULL.residents)
    sizes = replace(load.FULL, households=households, workers=workers, month_tickets=workers * 2)
    print("loaded the city:", await load.load_city(url, sizes, 2026), flush=True)


def fresh_copy(city: Path) -> Path:
    copy = city.with_name(city.stem + "-run.db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(city, copy)
    return copy


async def run_job(copy: Path, job: str, *, freeze: bool) -> dict[str, Any]:
    from bot.app import build_app, close
    from bot.settings import LimitSettings
    from scheduler import jobs
    from scheduler.context import JobContext
    from tests.e2e.harness import sandbox_settings

    settings = sandbox_settings(
        "http://127.0.0.1:9",  # never called: the sender does not run
        f"sqlite+aiosqlite:///{copy}",
        limits=LimitSettings(),
        data_dir=copy.parent,
    )
    clock = RunningClock()
    app = build_app(settings, clock)
    context = JobContext(
        sessions=app.sessions, clock=clock, settings=settings, readers=app.work.readers
    )
    if freeze:
        gc.collect()
        gc.freeze()
    profile = os.environ.get("BENCH_LAG_PROFILE")
    sampler = LagSampler(Path(profile)) if profile else None
    passes: list[tuple[int, float]] = []
    began = [0.0]

    def collected(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            passes.append((info["generation"], time.perf_counter() - began[0]))

    late: list[float] = []
    loop = asyncio.get_running_loop()

    async def tick() -> None:
        while True:
            started = loop.time()
            await asyncio.sleep(TICK)
            late.append(max(0.0, loop.time() - started - TICK))
            if sampler is not None:
                sampler.beat = time.monotonic()

    ticker = asyncio.create_task(tick())
    gc.callbacks.append(collected)
    started, cpu = time.monotonic(), time.process_time()
    try:
        await getattr(jobs, job)(context)
    finally:
        took, cpu = time.monotonic() - started, time.process_time() - cpu
        gc.callbacks.remove(collected)
        ticker.cancel()
        if sampler is not None:
            sampler.close()
        await close(app)
    return {
        "took": took,
        "cpu": cpu,
        "lag_max": max(late, default=0.0),
        "lag_p99": percentile(late, 99),
        "passes": passes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.job_lag", description=__doc__)
    parser.add_argument("--job", choices=JOBS, default=JOBS[0])
    parser.add_argument("--households", type=int, default=150_000)
    parser.add_argument("--workers", type=int, default=6_000)
    parser.add_argument("--sqlite-file", type=Path, help="the city (loaded if it is missing)")
    parser.add_argument("--no-freeze", action="store_true", help="leave the start-up heap")
    args = parser.parse_args()
    city = args.sqlite_file or Path(f"/tmp/gridbot-city-{args.households}-{args.workers}.db")
    if not city.exists():
        asyncio.run(build_city(city, args.households, args.workers))
    figures = asyncio.run(run_job(fresh_copy(city), args.job, freeze=not args.no_freeze))
    print(
        f"{args.job}: {figures['took']:.2f} s, CPU {figures['cpu']:.2f} s; loop lag max "
        f"{figures['lag_max'] * 1000:.0f} ms, p99 {figures['lag_p99'] * 1000:.0f} ms"
    )
    for generation in (0, 1, 2):
        spans = [span for g, span in figures["passes"] if g == generation]
        print(
            f"  gc generation {generation}: {len(spans)} passes, longest "
            f"{max(spans, default=0.0) * 1000:.0f} ms, in all {sum(spans) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()

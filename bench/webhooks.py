"""Webhook workers on PostgreSQL beside one polling process on SQLite (issue 24).

For each N of ``--workers`` (1, 2, 3): N real ``python -m bot run --webhook --no-scheduler``
processes on one PostgreSQL database with the conversation state in Redis, behind the
round-robin reverse proxy of :mod:`bench.fleet` (nginx's part in ``docs/deploy.md``); and, as
the baseline, one polling ``python -m bot run --no-scheduler`` on SQLite. Each setup gets a
fresh copy of the same database (the demo community and ``--residents`` residents), a fresh
sandbox Bot API server in this process and fresh Redis keys.

Residents arrive open-loop (Poisson) at ``--rate`` a second for ``--duration`` s, each arrival
the next /report step of a resident who is not waiting for a reply (``bench.load``'s scenario
(c) machinery: :func:`bench.load.open_loop`, :class:`bench.load.Resident`); a reply's latency
is "the person acted" → "the sandbox holds the bot's first answer". **Telegram's limits are off**
(the sandbox answers no 429 and the bot paces at 10,000 msg/s, no gap between a chat's
messages): this measures the bot, not Telegram's 30 msg/s. ``--knee`` then steps each setup's
rate up ``--ladder`` until p99 passes 1 s (or steps fail, or every resident is busy); down
it if the main run was past that already.

Printed: a table of setup, offered rate, handled updates/s, reply p50/p99, failures and the
ratios against the polling baseline; the CPU a handled update costs (the bot processes and the
PostgreSQL and Redis servers, less what they spend idle, measured for a few seconds before)
and so the updates a second one core serves, the figure sizing needs; the machine's CPU busy
share during the run (N processes share the same cores); with ``--knee``, the knee and the
most updates a second handled. The load generator, the sandbox and the proxy all run in this
one process (its share of a core is printed): they are not part of what is measured, but they
share the cores. ``--resident-offset`` (random by default) keeps the residents' conversation
state in Redis this run's own.

    .venv/bin/python -m bench.webhooks --quick
    .venv/bin/python -m bench.webhooks --knee \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/gridbot_webhooks

The named PostgreSQL database and its template ``<name>_base`` are dropped and created afresh
(``test`` and ``postgres`` are refused) and dropped at the end. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import re
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import col

from bench import load
from bench.fleet import (
    WEBHOOK_SECRET,
    Proxy,
    Worker,
    forget_fsm_keys,
    gridbot_env,
    gridbots,
    proxy,
)
from bench.load import Databases, Latencies, Resident, TimedSandbox, ms, open_loop, say
from bot.db import create_engine
from bot.sandbox.app import run_sandbox
from bot.sandbox.client import SandboxClient
from bot.sandbox.ratelimit import RateLimits
from bot.sandbox.updates import WebhookSettings
from models import Person
from tests.e2e.harness import BOT_USERNAME, TOKEN

DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/gridbot_webhooks"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
KNEE_P99 = 1.0  # seconds: past the knee when p99 passes this
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sizes:
    residents: int
    rate: float  # arrivals a second
    duration: float  # seconds
    warm_up: float  # seconds of unmeasured arrivals before
    idle_seconds: float  # then the bot processes' and servers' idle CPU is measured this long
    ladder: tuple[float, ...]  # --knee: the rates tried, in order
    ladder_seconds: float
    step_timeout: float  # a resident gives up on a reply after this long


FULL = Sizes(
    residents=300,
    rate=40,
    duration=30,
    warm_up=4,
    idle_seconds=3,
    ladder=(20, 30, 50, 60, 80, 100, 130, 170),
    ladder_seconds=10,
    step_timeout=30,
)
QUICK = replace(
    FULL, residents=40, rate=10, duration=6, warm_up=2, ladder=(5, 20, 30), ladder_seconds=4
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhooks",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("GRIDBOT_BENCH_DATABASE_URL", DEFAULT_DATABASE),
        help=f"a PostgreSQL database of the bench's own (default {DEFAULT_DATABASE})",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help=f"default {DEFAULT_REDIS}")
    parser.add_argument("--workers", type=_counts, default=(1, 2, 3), help="e.g. 1,2,3")
    parser.add_argument("--no-baseline", action="store_true", help="skip the SQLite baseline")
    parser.add_argument("--rate", type=float, help="arrivals a second")
    parser.add_argument("--duration", type=float, help="seconds of arrivals")
    parser.add_argument("--residents", type=int, help="residents in the database")
    parser.add_argument(
        "--knee", action="store_true", help="then step each setup's rate up (or down) a ladder"
    )
    parser.add_argument("--ladder", type=load._rates, help="the rates --knee tries")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--resident-offset",
        type=int,
        default=secrets.randbelow(90_000) * 1000,
        help="added to the residents' Telegram ids (default: random, so their conversation "
        "state in Redis is this run's own)",
    )
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.rate is not None:
        sizes = replace(sizes, rate=args.rate)
    if args.duration is not None:
        sizes = replace(sizes, duration=args.duration)
    if args.residents is not None:
        sizes = replace(sizes, residents=args.residents)
    if args.ladder is not None:
        sizes = replace(sizes, ladder=args.ladder)
    if not 0 < sizes.rate <= 5_000 or not 0 < sizes.duration <= 3_600:
        parser.error("--rate between 0 and 5,000, --duration between 0 and 3,600 s")
    if not 1 <= sizes.residents <= 10_000:
        parser.error("--residents between 1 and 10,000")
    if not 0 <= args.resident_offset <= 90_000_000:
        parser.error("--resident-offset between 0 and 90,000,000")
    name = make_url(args.database_url).database
    if not args.database_url.startswith("postgresql") or name in (None, "", "test", "postgres"):
        parser.error("--database-url: a PostgreSQL database of its own, e.g. …/gridbot_webhooks")
    args.sizes = sizes
    return args


def _counts(text: str) -> tuple[int, ...]:
    counts = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    if not counts or any(not 1 <= n <= 8 for n in counts):
        raise argparse.ArgumentTypeError("worker counts between 1 and 8, e.g. 1,2,3")
    return counts


# --- CPU ---------------------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a live process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, over every core."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICK, total / CLOCK_TICK


def service_cpu() -> dict[int, float]:
    """CPU seconds of each PostgreSQL and Redis server process on this machine (the whole
    server: other clients' work too)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() in ("postgres", "redis-server"):
                found[int(entry.name)] = process_cpu(int(entry.name))
    return {pid: cpu for pid, cpu in found.items() if not math.isnan(cpu)}


@dataclass
class Meter:
    """CPU of the bot processes, of the database and Redis servers, of this process and of the
    machine over one run."""

    pids: list[int]
    began: float = field(default_factory=time.monotonic)
    bots: float = 0.0
    services: dict[int, float] = field(default_factory=service_cpu)
    parent: float = field(default_factory=time.process_time)
    machine: tuple[float, float] = field(default_factory=machine_cpu)

    def __post_init__(self) -> None:
        self.bots = sum(process_cpu(pid) for pid in self.pids)

    def read(self) -> dict[str, float]:
        busy, total = machine_cpu()
        now = service_cpu()
        elapsed = max(time.monotonic() - self.began, 1e-9)
        return {
            "elapsed": elapsed,
            "bots_cpu": sum(process_cpu(pid) for pid in self.pids) - self.bots,
            "services_cpu": sum(cpu - self.services.get(pid, 0.0) for pid, cpu in now.items()),
            "parent_share": (time.process_time() - self.parent) / elapsed,
            "machine_busy": (busy - self.machine[0]) / max(total - self.machine[1], 1e-9),
        }


# --- one setup ---------------------------------------------------------------------------------


@dataclass
class Setup:
    name: str  # "1 webhook (PostgreSQL)", "polling (SQLite)"
    workers: int  # 0: the polling baseline
    runs: list[dict[str, Any]] = field(default_factory=list)  # the main run, then the ladder

    @property
    def webhook(self) -> bool:
        return self.workers > 0


@dataclass
class Stage:
    """A setup while it runs: its sandbox, residents, processes and proxy."""

    server: TimedSandbox
    residents: list[Resident]
    processes: list[Worker]
    front: Proxy | None
    idle_cpu: float = 0.0  # CPU seconds a second of the bot processes and servers, idle

    async def settled(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until the bot has taken every update (a run past the knee leaves a queue)."""
        deadline = time.monotonic() + timeout
        updates = self.server.get_bot(BOT_USERNAME).updates
        while updates.pending_count() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)

    async def measure_idle(self, seconds: float) -> None:
        meter = Meter([w.process.pid for w in self.processes])
        await asyncio.sleep(seconds)
        cpu = meter.read()
        self.idle_cpu = (cpu["bots_cpu"] + cpu["services_cpu"]) / cpu["elapsed"]


def measure(samples: Sequence[load.Sample], began: float, duration: float) -> dict[str, Any]:
    """Latencies, and the updates handled a second: the steps answered over the time from the
    first arrival to the last answer (the offered rate while the bot keeps up)."""
    latencies = Latencies.of(samples)
    answered = [s for s in samples if not s.failed]
    span = max([s.ended for s in answered], default=began + duration) - began
    return {
        "latencies": latencies,
        "handled_per_s": len(answered) / max(span, duration, 1e-9),
        "answered": len(answered),
    }


def errors_logged(processes: Sequence[Worker]) -> int:
    pattern = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback")
    count = 0
    for worker in processes:
        with contextlib.suppress(OSError):
            count += len(pattern.findall(worker.log.read_text(encoding="utf-8", errors="replace")))
    return count


async def one_run(stage: Stage, rate: float, duration: float, seed: int) -> dict[str, Any]:
    await stage.settled()
    meter = Meter([w.process.pid for w in stage.processes])
    proxy_502s = sum(stage.front.failed.values()) if stage.front else 0
    began = time.monotonic()
    samples, arrivals, busy = await open_loop(stage.residents, rate, duration, seed)
    cpu = meter.read()
    figures = measure(samples, began, duration)
    answered = max(figures["answered"], 1)
    serving = cpu["bots_cpu"] + cpu["services_cpu"] - stage.idle_cpu * cpu["elapsed"]
    return {
        **figures,
        "serving_ms": serving * 1000 / answered,
        "services_ms": cpu["services_cpu"] * 1000 / answered,
        "rate": rate,
        "offered": arrivals / duration,
        "arrivals": arrivals,
        "busy": busy,
        "cpu_ms": cpu["bots_cpu"] * 1000 / answered,
        "parent_share": cpu["parent_share"],
        "machine_busy": cpu["machine_busy"],
        "proxy_502s": (sum(stage.front.failed.values()) if stage.front else 0) - proxy_502s,
        "errors_logged": errors_logged(stage.processes),
    }


def past_knee(figures: dict[str, Any]) -> bool:
    lat: Latencies = figures["latencies"]
    return lat.p99 > KNEE_P99 or lat.failed > 0.01 * max(lat.steps, 1) or figures["busy"] > 0


@contextlib.asynccontextmanager
async def staged(
    args: argparse.Namespace, setup: Setup, url: str, folder: Path
) -> AsyncIterator[Stage]:
    """The sandbox, the residents and the setup's processes (and proxy) on ``url``."""
    sizes: Sizes = args.sizes
    server = TimedSandbox(
        rate_limits=RateLimits.off(),
        webhook=WebhookSettings(timeout=30.0, retry_base=0.05, retry_max=0.5),
    )
    server.register_bot(TOKEN, username=BOT_USERNAME, first_name="网格通")
    gridbot = server.get_bot(BOT_USERNAME)
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:  # the residents' ids: this run's own
            await connection.execute(
                update(Person)
                .where(col(Person.telegram_id) >= load.resident_id(0))
                .where(col(Person.telegram_id) < load.resident_id(sizes.residents))
                .values(telegram_id=col(Person.telegram_id) + args.resident_offset)
            )
        async with engine.connect() as connection:
            people = (
                await connection.execute(
                    select(col(Person.telegram_id), col(Person.name)).where(
                        col(Person.telegram_id).is_not(None)
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    for telegram_id, name in people:  # the demo community's workers get notices too
        if telegram_id is None:
            continue
        server.create_user(name, user_id=telegram_id, language_code="zh-hans")
        gridbot.relation(telegram_id).started = True
    chats = [load.resident_id(n) + args.resident_offset for n in range(sizes.residents)]
    settings = {
        "BOT_TOKEN": TOKEN,
        "WATCH__ENABLED": "false",
        # Telegram's limits off: the bot's own pacing too (this measures the bot)
        "LIMITS__MESSAGES_PER_SECOND": "10000",
        "LIMITS__PER_CHAT_INTERVAL": "0",
        "LIMITS__RETRY_BASE_SECONDS": "0.05",
    }
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
        run_sandbox(server, host="127.0.0.1", port=0) as sandbox,
        SandboxClient(sandbox.url, session=http) as client,
    ):
        residents = [
            Resident(
                client.persona_for(server.users[chat].to_api(), bot=BOT_USERNAME),
                server,
                n,
                sizes.step_timeout,
            )
            for n, chat in enumerate(chats)
        ]
        if not setup.webhook:
            env = gridbot_env(url, TELEGRAM_API_URL=sandbox.url, **settings)
            env.pop("REDIS_URL", None)
            async with gridbots(
                1,
                folder,
                env,
                webhook=False,
                ready=lambda: server.stats.requests["getUpdates"] > 0,
            ) as processes:
                yield Stage(server, residents, processes, None)
            return
        await forget_fsm_keys(args.redis_url, chats)
        addresses: list[str] = []  # the proxy starts first: the workers need its address
        try:
            async with proxy(addresses) as (front, proxy_url):
                env = gridbot_env(
                    url,
                    TELEGRAM_API_URL=sandbox.url,
                    REDIS_URL=args.redis_url,
                    WEBHOOK__URL=proxy_url,
                    WEBHOOK__SECRET=WEBHOOK_SECRET,
                    **settings,
                )
                async with gridbots(setup.workers, folder, env, webhook=True) as processes:
                    addresses.extend(worker.webhook for worker in processes)
                    yield Stage(server, residents, processes, front)
        finally:
            await forget_fsm_keys(args.redis_url, chats)


async def run_setup(
    args: argparse.Namespace, setup: Setup, databases: Databases, folder: Path
) -> None:
    sizes: Sizes = args.sizes
    url = await databases.copy("base")
    try:
        async with staged(args, setup, url, folder) as stage:
            # warm up: the first steps of many residents, unmeasured (imports, pools, caches)
            await open_loop(stage.residents, min(sizes.rate, 20), sizes.warm_up, args.seed - 1)
            await stage.measure_idle(sizes.idle_seconds)
            main = await one_run(stage, sizes.rate, sizes.duration, args.seed)
            setup.runs.append(main)
            say(f"  {setup.name}: {line(main)}")
            if args.knee:
                for n, rate in enumerate(rungs(sizes, past_knee(main))):
                    step = await one_run(stage, rate, sizes.ladder_seconds, args.seed + 1 + n)
                    step["ladder"] = True
                    setup.runs.append(step)
                    say(f"    ladder {rate:g}/s: {line(step)}")
                    if past_knee(step):
                        break
    finally:
        await databases.discard(url)


def rungs(sizes: Sizes, main_past_knee: bool) -> list[float]:
    """The ladder's rates above the main run's (below it, if that one was past the knee
    already), lowest first: they are tried until one is past the knee."""
    if main_past_knee:
        return [rate for rate in sizes.ladder if rate < sizes.rate]
    return [rate for rate in sizes.ladder if rate > sizes.rate]


def line(figures: dict[str, Any]) -> str:
    lat: Latencies = figures["latencies"]
    busy = f", {figures['busy']} arrivals found everyone busy" if figures["busy"] else ""
    return (
        f"{figures['offered']:.1f}/s offered, {figures['handled_per_s']:.1f}/s handled; "
        f"{lat.line()}; CPU an update: bots {figures['cpu_ms']:.1f} ms, PostgreSQL + Redis "
        f"{figures['services_ms']:.1f} ms, less idle {figures['serving_ms']:.1f} ms; machine "
        f"{figures['machine_busy']:.0%} busy, this process {figures['parent_share']:.0%} of a "
        f"core; {figures['proxy_502s']} × 502, {figures['errors_logged']} errors logged{busy}"
    )


# --- the table ---------------------------------------------------------------------------------


def knee(setup: Setup) -> str:
    """The highest rate tried with p99 ≤ 1 s, and the lowest one past it."""
    if not any(r.get("ladder") for r in setup.runs):
        return "—"
    good = [r["rate"] for r in setup.runs if not past_knee(r)]
    bad = [r["rate"] for r in setup.runs if past_knee(r)]
    if not bad:
        return f"> {max(good):g}/s"
    if not good:
        return f"< {min(bad):g}/s"
    return f"{max(r for r in good if r < min(bad)):g}–{min(bad):g}/s"


def table(setups: Sequence[Setup], baseline: Setup | None) -> str:
    head = (
        "setup",
        "offered/s",
        "handled/s",
        "× base",
        "p50",
        "p99",
        "p99 × base",
        "failed",
        "CPU/update",
        "/s a core",
        "machine busy",
        "knee (p99 ≤ 1 s)",
        "most handled/s",
    )
    rows: list[tuple[str, ...]] = [head]
    base = baseline.runs[0] if baseline and baseline.runs else None
    for setup in setups:
        if not setup.runs:
            rows.append((setup.name, "did not run", *[""] * (len(head) - 2)))
            continue
        main = setup.runs[0]
        lat: Latencies = main["latencies"]
        base_lat: Latencies | None = base["latencies"] if base else None
        rows.append(
            (
                setup.name,
                f"{main['offered']:.1f}",
                f"{main['handled_per_s']:.1f}",
                load.ratio(main["handled_per_s"], base["handled_per_s"]) if base else "—",
                ms(lat.p50),
                ms(lat.p99),
                load.ratio(lat.p99, base_lat.p99) if base_lat else "—",
                f"{lat.failed}/{lat.steps}",
                f"{main['serving_ms']:.1f} ms",
                f"{1000 / main['serving_ms']:.0f}" if main["serving_ms"] > 0 else "—",
                f"{main['machine_busy']:.0%}",
                knee(setup),
                f"{max(r['handled_per_s'] for r in setup.runs):.1f}",
            )
        )
    widths = [max(load.width(str(row[i])) for row in rows) for i in range(len(head))]
    out = []
    for n, row in enumerate(rows):
        out.append(
            "| "
            + " | ".join(
                str(c) + " " * (w - load.width(str(c))) for c, w in zip(row, widths, strict=True)
            )
            + " |"
        )
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def make_folders(folder: Path, names: Sequence[str]) -> None:
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)


def _plain(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: (asdict(v) if isinstance(v, Latencies) else v) for k, v in figures.items()}


@dataclass
class Result:
    setups: list[Setup]
    baseline: Setup | None
    table: str


async def run(args: argparse.Namespace) -> Result:
    sizes: Sizes = args.sizes
    setups = [Setup(f"{n} webhook (PostgreSQL)", n) for n in args.workers]
    baseline = None if args.no_baseline else Setup("1 polling (SQLite)", 0)
    if baseline:
        setups.insert(0, baseline)
    with tempfile.TemporaryDirectory(prefix="gridbot-webhooks-") as directory:
        folder = Path(directory)
        say(
            f"bench.webhooks{' (quick)' if args.quick else ''}: {os.cpu_count()} cores, load "
            f"average {os.getloadavg()[0]:.1f}; {sizes.residents} residents arriving at "
            f"{sizes.rate:g}/s for {sizes.duration:g} s; Telegram's limits off"
        )
        load_sizes = replace(load.QUICK, residents=sizes.residents)
        postgres = Databases(args.database_url, folder / "pg", load_sizes, args.seed)
        sqlite = Databases(None, folder / "sqlite", load_sizes, args.seed)
        make_folders(folder, ["pg", "sqlite", *(f"setup{s.workers}" for s in setups)])
        try:
            for setup in setups:
                databases = postgres if setup.webhook else sqlite
                say(f"{setup.name}")
                await run_setup(args, setup, databases, folder / f"setup{setup.workers}")
        finally:
            await postgres.close()
            with contextlib.suppress(Exception):
                await postgres._admin(
                    f'DROP DATABASE IF EXISTS "{make_url(args.database_url).database}"'
                )
        shown = table(setups, baseline)
        say(f"\nload average at the end {os.getloadavg()[0]:.1f}\n{shown}")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "sizes": asdict(sizes),
                        "setups": [
                            {
                                "name": s.name,
                                "workers": s.workers,
                                "runs": [_plain(r) for r in s.runs],
                            }
                            for s in setups
                        ],
                    },
                    ensure_ascii=False,
                    indent=1,
                    default=str,
                )
            )
        return Result(setups, baseline, shown)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

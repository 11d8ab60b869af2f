"""``gridbot run --webhook --workers N``: the supervisor (bot/workers.py) and what it refuses.

The whole fleet — three workers on one port, one killed and started again — is
``tests/e2e/test_workers_e2e.py``; here the supervisor runs small Python processes in their
place.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from bot import workers
from bot.workers import Supervisor, port_answers, worker_command
from tests.test_startup import CLI, cli  # noqa: F401  (the fixture)

PG = "postgresql+asyncpg://gridbot@127.0.0.1:5432/gridbot"


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


async def always_ready() -> bool:
    return True


async def never_ready() -> bool:
    return False


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "RESTART_PAUSE", 0.01)
    monkeypatch.setattr(workers, "STOP_GRACE", 5.0)


def test_only_worker_1_competes_for_the_scheduler_and_each_shares_the_port() -> None:
    first, second = (worker_command(n, scheduler=True, verbose=False) for n in (1, 2))
    assert first[first.index("run") :] == ["run", "--webhook", "--worker", "1"]
    assert second[second.index("run") :] == [
        "run",
        "--webhook",
        "--worker",
        "2",
        "--no-scheduler",
    ]
    assert "--no-scheduler" in worker_command(1, scheduler=False, verbose=False)
    assert worker_command(3, scheduler=True, verbose=True)[3] == "--verbose"


async def test_workers_that_keep_dying_stop_the_supervisor_with_status_1() -> None:
    started: list[int] = []

    def command(number: int) -> list[str]:
        started.append(number)
        return python("import sys; sys.exit(3)")

    supervisor = Supervisor(2, command, always_ready)
    assert await supervisor.run() == 1
    assert supervisor.given_up == workers.RESTARTS_ALLOWED + 1
    assert len(started) == workers.RESTARTS_ALLOWED + 2  # two, then one again per death bar one


async def test_a_worker_that_dies_is_started_again_and_the_others_go_on(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    # worker 2 dies at once the first time, then serves; worker 1 serves throughout
    code = (
        "import pathlib, sys, time, os\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "me = sys.argv[1]\n"
        "first = not (runs / me).exists()\n"
        "(runs / me).write_text(str(os.getpid()))\n"
        "(runs / (me + '-' + str(os.getpid()))).touch()\n"
        "if me == '2' and first: sys.exit(9)\n"
        "time.sleep(60)\n"
    )
    supervisor = Supervisor(2, lambda n: [*python(code), str(n)], always_ready)
    running = asyncio.create_task(supervisor.run())
    for _ in range(200):
        if len(list(runs.glob("2-*"))) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(list(runs.glob("2-*"))) == 2, "worker 2 was not started again"
    assert len(list(runs.glob("1-*"))) == 1
    assert supervisor.deaths and supervisor.given_up is None
    supervisor.stopping.set()
    assert await running == 0
    assert supervisor.running == {}


async def test_sigterm_stops_every_worker_cleanly_and_the_supervisor_with_0(
    tmp_path: Path,
) -> None:
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    code = (
        "import pathlib, signal, sys, time\n"
        "def stop(*_):\n"
        f"    (pathlib.Path({str(stopped)!r}) / sys.argv[1]).touch()\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"(pathlib.Path({str(stopped)!r}) / ('up' + sys.argv[1])).touch()\n"
        "time.sleep(60)\n"
    )
    supervisor = Supervisor(3, lambda n: [*python(code), str(n)], always_ready)
    running = asyncio.create_task(supervisor.run())
    for _ in range(200):
        if len(list(stopped.glob("up*"))) == 3:
            break
        await asyncio.sleep(0.05)
    pids = [w.process.pid for w in supervisor.running.values()]
    os.kill(os.getpid(), signal.SIGTERM)  # what systemd or docker sends the supervisor
    assert await running == 0
    assert sorted(p.name for p in stopped.iterdir() if not p.name.startswith("up")) == [
        "1",
        "2",
        "3",
    ]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_worker_1_that_cannot_start_stops_the_supervisor_with_its_status() -> None:
    started: list[int] = []

    def command(number: int) -> list[str]:
        started.append(number)
        return python("import sys; sys.exit(2)")

    assert await Supervisor(3, command, never_ready).run() == 2
    assert started == [1]  # the others were never started


async def test_the_port_answers_once_something_listens_on_it() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert await port_answers("0.0.0.0", port)()  # noqa: S104
    assert not await port_answers("127.0.0.1", port)()


def test_workers_need_the_webhook(cli: CLI) -> None:  # noqa: F811
    err = cli(["run", "--workers", "3"], DATABASE_URL=PG, REDIS_URL="redis://127.0.0.1:6379/0")
    assert "--webhook" in err


def test_workers_need_postgresql_and_redis(cli: CLI) -> None:  # noqa: F811
    hook = {"WEBHOOK__URL": "https://bot.example.org/telegram/webhook"}
    sqlite = f"sqlite+aiosqlite:///{cli.home / 'gridbot.db'}"
    err = cli(
        ["run", "--webhook", "--workers", "2"],
        **hook,
        DATABASE_URL=sqlite,
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert "PostgreSQL and Redis" in err
    cli.monkeypatch.delenv("REDIS_URL", raising=False)
    err = cli(["run", "--webhook", "--workers", "2"], **hook, DATABASE_URL=PG)
    assert "PostgreSQL and Redis" in err


@pytest.mark.parametrize("count", ["0", "65", "-2"])
def test_a_number_of_workers_out_of_range_is_refused(cli: CLI, count: str) -> None:  # noqa: F811
    err = cli(
        ["run", "--webhook", "--workers", count],
        DATABASE_URL=PG,
        REDIS_URL="redis://127.0.0.1:6379/0",
        WEBHOOK__URL="https://bot.example.org/telegram/webhook",
    )
    assert "from 1 to 64" in err


def test_workers_need_a_fixed_port(cli: CLI) -> None:  # noqa: F811
    err = cli(
        ["run", "--webhook", "--workers", "2"],
        DATABASE_URL=PG,
        REDIS_URL="redis://127.0.0.1:6379/0",
        WEBHOOK__URL="https://bot.example.org/telegram/webhook",
        WEBHOOK__PORT="0",
    )
    assert "WEBHOOK__PORT" in err

"""The deployment files say what docs/deploy.md says, with commands the command line accepts.

Images cannot be built here (no registry but PyPI, Debian and npm is reachable), so this is the
check that is possible: every ``gridbot …`` in the Dockerfile, the compose file and the systemd
units parses, and the roles are wired as documented.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.__main__ import build_parser

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    return data


def gridbot_commands() -> list[list[str]]:
    found: list[list[str]] = []
    for service in compose()["services"].values():
        command = service.get("command")
        if command and command[0] == "gridbot":
            found.append(command)
    docker = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    found += [json.loads(m) for m in re.findall(r"^CMD (\[.*\])$", docker, re.MULTILINE)]
    for unit in (DEPLOY / "systemd").glob("*.service"):
        for line in unit.read_text(encoding="utf-8").splitlines():
            if line.startswith("ExecStart="):
                words = shlex.split(line.removeprefix("ExecStart="))
                found.append(["gridbot", *words[1:]])
    return found


@pytest.mark.parametrize("command", gridbot_commands(), ids=" ".join)
def test_every_command_is_one_gridbot_accepts(command: list[str]) -> None:
    assert command[0] == "gridbot"
    build_parser().parse_args(command[1:])


def test_the_roles_are_wired_as_documented() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["gridbot", "db", "upgrade"]
    for role in ("bot", "scheduler"):
        assert services[role]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    bot = services["bot"]
    assert "--no-scheduler" in bot["command"] and "--webhook" in bot["command"]
    assert int(bot["command"][bot["command"].index("--workers") + 1]) > 1
    assert bot["environment"]["REDIS_URL"].startswith("redis://")
    # the workers share one pace in Redis: each keeps the bot's whole limit
    assert bot["environment"]["LIMITS__MESSAGES_PER_SECOND"] == "30"
    assert services["scheduler"]["deploy"]["replicas"] == 2
    nginx = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    assert "location /telegram/webhook" in nginx and "server bot:8081" in nginx


def test_the_systemd_workers_are_stopped_through_their_supervisor() -> None:
    unit = (DEPLOY / "systemd" / "gridbot.service").read_text(encoding="utf-8")
    assert "--workers" in unit and "KillMode=mixed" in unit

"""Raw HTTP calls to the sandbox, for what aiogram would check before sending."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.sandbox.app import RunningSandbox
from tests.sandbox.conftest import TOKEN


async def raw_call(
    sandbox: RunningSandbox,
    method: str,
    *,
    token: str = TOKEN,
    json: dict[str, Any] | None = None,
    data: Any = None,
    params: dict[str, str] | None = None,
    http_method: str = "POST",
    session: aiohttp.ClientSession | None = None,
) -> tuple[int, Any]:
    """POST ``/bot<token>/<method>``; return (status, decoded JSON or text)."""
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await raw_call(
                sandbox,
                method,
                token=token,
                json=json,
                data=data,
                params=params,
                http_method=http_method,
                session=own,
            )
    async with session.request(
        http_method, f"{sandbox.url}/bot{token}/{method}", json=json, data=data, params=params
    ) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()

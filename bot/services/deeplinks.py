"""Deep-link payloads of ``/start`` (at most 64 characters of ``A-Za-z0-9_-``).

- ``join_<grid code>``: a grid's QR code on its notice board; the resident joins that grid.
- ``inv_<token>``: a single-use invitation that gives a role (worker, head, …).
- ``ll_<token>``: a single-use link a grid worker gives a landlord (房东) for a rental house.
- ``tn_<token>``: a rental house's link with which its tenants register themselves.

Anything else is no link of ours: the parser returns ``None`` and the bot says so politely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

JOIN_PREFIX = "join_"
INVITE_PREFIX = "inv_"
LANDLORD_PREFIX = "ll_"
TENANT_PREFIX = "tn_"
PAYLOAD_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
GRID_CODE_RE = re.compile(r"[0-9]{9,22}")
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{22,48}")


@dataclass(frozen=True)
class JoinGrid:
    grid_code: str


@dataclass(frozen=True)
class UseInvite:
    token: str


@dataclass(frozen=True)
class BecomeLandlord:
    token: str


@dataclass(frozen=True)
class RegisterAsTenant:
    token: str


DeepLink = JoinGrid | UseInvite | BecomeLandlord | RegisterAsTenant


def parse_start_payload(payload: str | None) -> DeepLink | None:
    """Read a ``/start`` payload; ``None`` for anything that is not one of our links."""
    if not payload or not PAYLOAD_RE.fullmatch(payload):
        return None
    if payload.startswith(JOIN_PREFIX):
        code = payload[len(JOIN_PREFIX) :]
        return JoinGrid(code) if GRID_CODE_RE.fullmatch(code) else None
    if payload.startswith(INVITE_PREFIX):
        token = payload[len(INVITE_PREFIX) :]
        return UseInvite(token) if TOKEN_RE.fullmatch(token) else None
    for prefix, kind in ((LANDLORD_PREFIX, BecomeLandlord), (TENANT_PREFIX, RegisterAsTenant)):
        if payload.startswith(prefix):
            token = payload[len(prefix) :]
            return kind(token) if TOKEN_RE.fullmatch(token) else None
    return None


def is_rental_link(payload: str | None) -> bool:
    """A landlord's or a tenant's link (handled by the rentals' router)."""
    return isinstance(parse_start_payload(payload), BecomeLandlord | RegisterAsTenant)


def join_payload(grid_code: str) -> str:
    return f"{JOIN_PREFIX}{grid_code}"


def invite_payload(token: str) -> str:
    return f"{INVITE_PREFIX}{token}"


def landlord_payload(token: str) -> str:
    return f"{LANDLORD_PREFIX}{token}"


def tenant_payload(token: str) -> str:
    return f"{TENANT_PREFIX}{token}"


def start_link(bot_username: str, payload: str) -> str:
    return f"https://t.me/{bot_username}?start={payload}"

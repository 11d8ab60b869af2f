"""aiogram routers, one module per audience or flow.

Order matters: the first router whose filters match handles the update, so specific flows
come first, ``common`` after them, and the catch-all ``fallback`` last. ``errors`` only sees
exceptions.
"""

from __future__ import annotations

from aiogram import Router

from handlers import common, errors, fallback


def build_router() -> Router:
    root = Router(name="gridbot")
    root.include_routers(
        common.router,
        errors.router,
        fallback.router,  # always last
    )
    return root

"""Parsers of slash-command arguments. Pure; every one is tested with hostile input."""

from __future__ import annotations

import unicodedata

from models import Role

ROLE_WORDS: dict[str, Role] = {
    "worker": Role.WORKER,
    "网格员": Role.WORKER,
    "網格員": Role.WORKER,
    "head": Role.HEAD,
    "网格长": Role.HEAD,
    "網格長": Role.HEAD,
    "center": Role.CENTER,
    "centre": Role.CENTER,
    "中心": Role.CENTER,
    "department": Role.DEPARTMENT,
    "dept": Role.DEPARTMENT,
    "部门": Role.DEPARTMENT,
    "部門": Role.DEPARTMENT,
    "supervisor": Role.SUPERVISOR,
    "督查": Role.SUPERVISOR,
    "admin": Role.ADMIN,
    "管理员": Role.ADMIN,
    "管理員": Role.ADMIN,
    "resident": Role.RESIDENT,
    "居民": Role.RESIDENT,
}
MAX_ARGS_LENGTH = 2000


def normalize(text: str | None) -> str:
    """NFKC (full-width letters, digits and spaces become plain), trimmed and bounded."""
    if not text:
        return ""
    return unicodedata.normalize("NFKC", text)[:MAX_ARGS_LENGTH].strip()


def split_args(text: str | None, maxsplit: int = -1) -> list[str]:
    """Words of a command's arguments (any run of white space separates them)."""
    cleaned = normalize(text)
    return cleaned.split(None, maxsplit) if cleaned else []


def parse_role(word: str) -> Role | None:
    return ROLE_WORDS.get(normalize(word).lower())

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
GRID_ACTIONS: dict[str, str] = {
    "add": "add",
    "新增": "add",
    "添加": "add",
    "rename": "rename",
    "改名": "rename",
    "move": "move",
    "移动": "move",
    "移動": "move",
    "notice": "notice",
    "公示": "notice",
    "help": "help",
    "?": "help",
    "帮助": "help",
    "幫助": "help",
}
"""The word after /grid: English, Simplified or Traditional (what the usage text shows)."""
NOTICE_FIELD_WORDS: dict[str, str] = {
    "area": "area",
    "范围": "area",
    "範圍": "area",
    "服务范围": "area",
    "服務範圍": "area",
    "services": "services",
    "事项": "services",
    "事項": "services",
    "服务事项": "services",
    "服務事項": "services",
    "process": "process",
    "流程": "process",
    "投诉流程": "process",
    "投訴流程": "process",
    "phone": "phone",
    "电话": "phone",
    "電話": "phone",
    "投诉电话": "phone",
    "投訴電話": "phone",
}
PEOPLE_ACTIONS: dict[str, str] = {
    "off": "off",
    "停用": "off",
    "set": "set",
    "调整": "set",
    "調整": "set",
    "mute": "mute",
    "禁言": "mute",
    "forget": "forget",
    "删除": "forget",
    "刪除": "forget",
    "遗忘": "forget",
}
HOLIDAY_ACTIONS: dict[str, str] = {
    "off": "off",
    "休息": "off",
    "work": "work",
    "上班": "work",
    "remove": "remove",
    "恢复": "remove",
    "恢復": "remove",
}
SET_WORDS: dict[str, str] = {"set": "set", "设置": "set", "設定": "set"}  # /quota_rules set
QUOTA_RULE_ACTIONS: dict[str, str] = {
    **SET_WORDS,
    "add": "add",
    "新增": "add",
    "添加": "add",
    "retire": "retire",
    "停用": "retire",
}
"""The word after /quota_rules: English, Simplified or Traditional (what the usage shows)."""
DUTY_ACTIONS: dict[str, str] = {
    "add": "add",
    "新增": "add",
    "添加": "add",
    "remove": "remove",
    "删除": "remove",
    "刪除": "remove",
}
"""The word after /duty (what the usage shows)."""
FILE_WORDS = frozenset({"file", "文件", "檔案"})
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


def parse_word(word: str | None, words: dict[str, str]) -> str | None:
    """The action or field a typed word names (case and full width forgiven), or None."""
    return words.get(normalize(word).lower())

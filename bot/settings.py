"""Typed settings, read once from the environment and ``.env`` (pydantic-settings)."""

from __future__ import annotations

import re
from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCALES: tuple[str, ...] = ("zh_Hans", "zh_Hant", "en")
TOKEN_RE = re.compile(r"^\d{5,15}:[A-Za-z0-9_-]{30,60}$")
SUPPORTED_DB_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")


class WebhookSettings(BaseModel):
    """Webhook mode (several bot processes behind a reverse proxy)."""

    url: str | None = None
    secret: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)  # 0: any free port (tests)
    path: str = "/telegram/webhook"

    @field_validator("secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("the webhook secret must be 1-256 characters of A-Z a-z 0-9 _ -")
        return value


class WatchSettings(BaseModel):
    """Where a polling bot serves /healthz and /metrics (in webhook mode: the webhook's server)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9090, ge=0, le=65535)  # 0: any free port (tests)


class QuietHours(BaseModel):
    """Non-urgent messages wait while the clock is inside this window (local time)."""

    start: time = time(21, 0)
    end: time = time(7, 30)


class LimitSettings(BaseModel):
    """Delivery limits of the outbox sender (Telegram's own limits by default)."""

    messages_per_second: float = Field(default=30.0, gt=0)
    per_chat_interval: float = Field(default=1.0, ge=0)
    max_attempts: int = Field(default=8, ge=1)
    retry_base_seconds: float = Field(default=1.0, gt=0)
    # how long an outbox row leased by a process stays its own without a renewal: the rows of
    # a process that died go out from another once it has run out
    lease_seconds: float = Field(default=120.0, ge=1)  # sender.LEASE


class ReportLimits(BaseModel):
    """Limits against abuse: new tickets per person."""

    per_hour: int = Field(default=5, ge=1)
    per_day: int = Field(default=20, ge=1)


class BackupSettings(BaseModel):
    """The nightly backup of an SQLite database (03:00 local time): off unless ``dir`` is set."""

    dir: Path | None = None  # where gridbot-YYYYMMDD-HHMM.sqlite3 files go
    keep: int = Field(default=14, ge=1)  # the newest this many are kept, older ones deleted

    @field_validator("dir", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


class Open311Settings(BaseModel):
    """Open311 (GeoReport v2) for partner apps: reports a key may file, and whom to contact."""

    per_hour: int = Field(default=60, ge=1)
    per_day: int = Field(default=500, ge=1)
    contact: str = ""  # discovery's contact line: who runs this endpoint


class PeopleSettings(BaseModel):
    """The people register (实有人口): the secret that keeps ID numbers, and how long the
    personal data of people who moved away is kept."""

    # url-safe base64 of 32 bytes (``gridbot people-key new``); ID numbers are encrypted with
    # it and looked up by a hash keyed with it: docs/people.md says what losing it means
    key: SecretStr | None = None
    # secrets used before a rotation, comma-separated: numbers sealed with them still open
    old_keys: SecretStr | None = None
    # personal data of people who moved out is erased this many years after they left
    retention_years: int = Field(default=3, ge=1, le=100)
    # a tenant's residence registration (居住登记) is due this many days after moving in
    # (居住证暂行条例 and the provinces' rules for 流动人口; set your locality's figure)
    residence_registration_days: int = Field(default=30, ge=1, le=365)
    # the landlord and the grid worker are reminded this many days before it lapses
    residence_reminder_days: int = Field(default=5, ge=1, le=60)

    @property
    def older_keys(self) -> tuple[str, ...]:
        """The secrets of :attr:`old_keys`, one by one."""
        text = self.old_keys.get_secret_value() if self.old_keys is not None else ""
        return tuple(part.strip() for part in text.split(",") if part.strip())

    @field_validator("key", "old_keys")
    @classmethod
    def _empty_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value


class PartySettings(BaseModel):
    """Party members' contact households (党员联系户): the cadence of 方案1 §2 — each contact
    household contacted at least once a month (any way), a policy micro-lecture (微宣讲) to
    each at least once a quarter — and how many households one party member takes (20–30)."""

    contact_period: Literal["month", "quarter", "year"] = "month"
    lecture_period: Literal["month", "quarter", "year", "none"] = "quarter"
    max_households: int = Field(default=30, ge=1, le=200)


class Settings(BaseSettings):
    """Everything GridBot reads from its environment."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
    )

    bot_token: SecretStr | None = None
    telegram_api_url: str | None = Field(
        default=None, description="Another Bot API server (the sandbox, a local server)"
    )
    database_url: str = "sqlite+aiosqlite:///gridbot.db"
    redis_url: str | None = None
    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_Hans"
    webhook: WebhookSettings = WebhookSettings()
    watch: WatchSettings = WatchSettings()
    quiet_hours: QuietHours = QuietHours()
    limits: LimitSettings = LimitSettings()
    reports: ReportLimits = ReportLimits()
    backup: BackupSettings = BackupSettings()
    open311: Open311Settings = Open311Settings()
    people: PeopleSettings = PeopleSettings()
    party: PartySettings = PartySettings()
    fsm_idle_minutes: int = Field(default=60, ge=1)
    # an emergency broadcast: who has not tapped "收到" this long after it started is listed
    broadcast_confirm_minutes: int = Field(default=30, ge=1, le=1440)
    sandbox_port: int = Field(default=8080, ge=1, le=65535)
    data_dir: Path = Path(".")
    log_format: Literal["text", "json"] = "text"  # json: one JSON object a line

    @property
    def outbox_files(self) -> Path:
        """Where files made for the outbox wait until they are sent."""
        return self.data_dir / "outbox-files"

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not TOKEN_RE.fullmatch(value.get_secret_value().strip()):
            raise ValueError("malformed bot token")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in SUPPORTED_DB_SCHEMES:
            raise ValueError("unsupported database URL")
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _api_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())  # raises ValueError on a bracket left open
        # ``port`` raises ValueError too, for a port that is no number or out of range
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.port == 0:
            raise ValueError("not an http(s) address")
        return value.strip()

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("unsupported Redis URL")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return value

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in LOCALES:
            raise ValueError("unknown locale")
        return value

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

"""aiogram's i18n over GridBot's catalogs, with the locale chosen per person."""

from __future__ import annotations

import gettext
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware
from aiogram.utils.i18n import gettext as _

from bot import i18n as catalogs
from models import Person


class CatalogI18n(I18n):
    """aiogram ``I18n`` fed from the ``.po`` catalogs compiled in memory."""

    def __init__(self, default_locale: str) -> None:
        super().__init__(
            path=catalogs.LOCALES_DIR, default_locale=default_locale, domain="gridbot"
        )

    def find_locales(self) -> dict[str, gettext.GNUTranslations]:
        return dict(catalogs.translations())

    @contextmanager
    def context(self) -> Iterator[I18n]:
        # aiogram's ``gettext`` looks the instance up on ``I18n`` itself, and every subclass
        # gets a context variable of its own, so register under the base class.
        token = I18n.set_current(self)
        try:
            yield self
        finally:
            I18n.reset_current(token)


class PersonI18nMiddleware(I18nMiddleware):
    """Locale: the person's choice, else Telegram's language, else the default."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        # worked out once per update (by UpdateContextMiddleware): the error observer runs after a
        # rollback has expired the person, and must answer in the same language
        if "locale" not in data:
            person: Person | None = data.get("person")
            user: User | None = data.get("event_from_user")
            data["locale"] = catalogs.resolve_locale(
                person.locale if person else None,
                user.language_code if user else None,
                self.i18n.default_locale,
            )
        locale: str = data["locale"]
        return locale


def t(message: str, **params: object) -> str:
    """``message`` in the language of the update being handled, its ``{named}`` slots filled:
    the translator handlers hand to the views."""
    return _(message).format(**params) if params else _(message)

"""Phone numbers: one normal form (E.164, ``+8613812345678``) and masking for exports."""

from __future__ import annotations

import phonenumbers

from bot.errors import InvalidInput
from bot.i18n import N_

MAX_INPUT = 40


class InvalidPhone(InvalidInput):
    message = N_("{phone} is not a valid phone number.")


def normalize_phone(raw: str, region: str = "CN") -> str:
    """The E.164 form of a Chinese (or international) number, or :class:`InvalidPhone`.

    Telegram sends a shared contact's number without the plus (``8613812345678``); people type
    ``138 1234 5678``, ``138-1234-5678``, ``+86 138…`` or a landline ``0592-6123456``.
    """
    text = raw.strip()[:MAX_INPUT] if raw else ""
    shown = text or "—"
    digits = "".join(ch for ch in text if ch.isdigit())
    if text and not text.startswith("+") and digits.startswith("86") and len(digits) == 13:
        text = "+" + digits  # a mobile number with the country code but no plus
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(phone=shown) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(phone=shown)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(e164: str | None) -> str:
    """How a stored number is shown to Chinese readers: ``138 1234 5678`` / ``0592 612 3456``."""
    if not e164:
        return "—"
    try:
        number = phonenumbers.parse(e164, "CN")
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def mask_phone(e164: str | None) -> str:
    """``138****5678``: enough to recognise, not enough to call (个人信息保护法)."""
    if not e164:
        return ""
    digits = "".join(ch for ch in e164 if ch.isdigit())
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"

"""Resident ID numbers (公民身份号码, GB 11643): read, checked, masked, kept secret.

:func:`parse_id_number` reads a number as people write it (full-width digits, spaces, a
lower-case ``x``) and checks it with python-stdnum's ``cn.ric`` — length, digits, the check
digit and the birth date inside it — and that the birth date is not in the future. What is
wrong raises :class:`InvalidIdNumber` with a translated reason.

:class:`IdVault` keeps the numbers secret at rest: ``seal`` gives the Fernet token to store
and the keyed hash (HMAC-SHA256) to look the number up by; ``open`` gives the number back.
Both keys come from one secret (``PEOPLE__KEY``), split with HKDF. A vault may also know
older secrets, to read numbers sealed before a rotation (:meth:`IdVault.rotate`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from bot.errors import InvalidInput
from bot.i18n import N_

from .tabular import shown

ID_LENGTH = 18
MASK = "*" * 11  # 110***********1234: the first three and the last four shown

BAD_LENGTH = N_("{value} is not a resident ID number: it must have 18 characters.")
OLD_NUMBER = N_(
    "{value} is an old 15-digit ID number; write the 18-digit number on the current card."
)
BAD_FORMAT = N_(
    "{value} is not a resident ID number: 17 digits and a last digit or X are expected."
)
BAD_BIRTH = N_("{value} is not a resident ID number: the birth date in it does not exist.")
FUTURE_BIRTH = N_("{value} is not a resident ID number: the birth date in it is in the future.")
BAD_CHECK = N_(
    "The ID number {value} has a wrong check digit (the last one); a digit was probably mistyped."
)


class InvalidIdNumber(InvalidInput):
    """A resident ID number that cannot be right; ``message`` says why, ``value`` quotes it."""


def normalise_id_number(text: str) -> str:
    """Full-width folded, spaces and dashes dropped, ``x`` upper-cased (no check)."""
    folded = unicodedata.normalize("NFKC", text[:64])
    return "".join(ch for ch in folded if not ch.isspace() and ch not in "-_").upper()


def parse_id_number(text: str, *, today: date) -> str:
    """The 18-character number written in ``text``, checked; InvalidIdNumber if it is wrong."""
    number = normalise_id_number(text)
    value = shown(text)
    if len(number) == 15 and number.isdigit():
        raise InvalidIdNumber(OLD_NUMBER, value=value)
    if len(number) != ID_LENGTH:
        raise InvalidIdNumber(BAD_LENGTH, value=value)
    if not number.isascii():
        raise InvalidIdNumber(BAD_FORMAT, value=value)
    # ric.validate's steps, without its region look-up: a card keeps the code of the county
    # that issued it, and counties are merged and renamed (old codes leave the tables)
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise InvalidIdNumber(BAD_FORMAT, value=value)
    if number[-1] != ric.calc_check_digit(number):
        raise InvalidIdNumber(BAD_CHECK, value=value)
    try:
        ric.get_birth_date(number)
    except ValidationError:
        raise InvalidIdNumber(BAD_BIRTH, value=value) from None
    if birth_date(number) > today:
        raise InvalidIdNumber(FUTURE_BIRTH, value=value)
    return number


def birth_date(number: str) -> date:
    """The birth date inside a checked number."""
    return ric.get_birth_date(number)


def is_male(number: str) -> bool:
    """The 17th digit of a checked number: odd for men, even for women."""
    return int(number[16]) % 2 == 1


def with_check_digit(first17: str) -> str:
    """A whole number from its first 17 digits (the demo data makes numbers this way)."""
    return first17 + ric.calc_check_digit(first17 + "0")  # it ignores the last character


def mask_id_number(number: str) -> str:
    """``110***********1234``: enough to tell two people apart on a list, not to use it."""
    if len(number) != ID_LENGTH:
        return "*" * ID_LENGTH
    return f"{number[:3]}{MASK}{number[-4:]}"


# --- keeping numbers secret -------------------------------------------------------------------


class BadKey(ValueError):
    """A ``PEOPLE__KEY`` that is no key (not 32 bytes of url-safe base64)."""


class WrongKey(Exception):
    """A stored number that none of the vault's keys opens: the key was changed or lost."""


@dataclass(frozen=True)
class Sealed:
    cipher: str  # the Fernet token to store
    digest: str  # the keyed hash to find it by (hex)


def new_key() -> str:
    """A fresh secret for ``PEOPLE__KEY`` (32 random bytes, url-safe base64)."""
    return Fernet.generate_key().decode("ascii")


def _raw(secret: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(secret.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise BadKey("not url-safe base64") from None
    if len(raw) != 32:
        raise BadKey("not 32 bytes")
    return raw


def _derive(raw: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(raw)


class IdVault:
    """Seals and opens resident ID numbers with the current secret (and reads older ones)."""

    def __init__(self, secret: str, older: Sequence[str] = ()) -> None:
        raws = [_raw(secret), *(_raw(s) for s in older)]
        self._fernet = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(_derive(r, b"gridbot id cipher"))) for r in raws]
        )
        self._mac = _derive(raws[0], b"gridbot id lookup")

    def digest(self, number: str) -> str:
        """The keyed hash of a checked number: equal numbers, equal digests."""
        return hmac.new(self._mac, number.encode("ascii"), hashlib.sha256).hexdigest()

    def seal(self, number: str) -> Sealed:
        return Sealed(
            self._fernet.encrypt(number.encode("ascii")).decode("ascii"), self.digest(number)
        )

    def open(self, cipher: str) -> str:
        try:
            return self._fernet.decrypt(cipher.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError, ValueError):
            raise WrongKey() from None

    def rotate(self, cipher: str) -> Sealed:
        """A number sealed with any known secret, sealed again with the current one."""
        return self.seal(self.open(cipher))


@lru_cache(maxsize=4)
def vault_for(secret: str, older: tuple[str, ...] = ()) -> IdVault:
    """One vault per secret for the process (deriving keys is not free)."""
    return IdVault(secret, older)

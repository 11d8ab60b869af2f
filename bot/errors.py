"""Typed domain errors; one error handler translates them for the person who caused them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.i18n import N_

if TYPE_CHECKING:
    from models import AuditLog


class DomainError(Exception):
    """A refusal the person should read.

    ``message`` is a catalog msgid with ``{named}`` slots, marked with ``N_`` where it is
    written: ``raise NotAllowed(N_("Only the author can edit this visit."))``.
    """

    message: str = N_("Something went wrong. Please try again.")

    def __init__(
        self, message: str | None = None, *, audit: AuditLog | None = None, **params: Any
    ) -> None:
        super().__init__(message or self.message)
        if message is not None:
            self.message = message
        self.params = params
        # kept by the error handler in a fresh transaction (the failed one is rolled back)
        self.audit = audit


class NotAllowed(DomainError):
    message = N_("Sorry, you are not allowed to do that.")


class NotFound(DomainError):
    message = N_("Sorry, that no longer exists.")


class InvalidInput(DomainError):
    message = N_("Sorry, I could not understand that.")

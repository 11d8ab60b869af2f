"""Typed domain errors; one error handler translates them for the person who caused them."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the person should read. ``message`` is a catalog msgid with ``{named}`` slots."""

    message: str = "Something went wrong. Please try again."

    def __init__(self, message: str | None = None, **params: Any) -> None:
        super().__init__(message or self.message)
        if message is not None:
            self.message = message
        self.params = params


class NotAllowed(DomainError):
    message = "Sorry, you are not allowed to do that."


class NotFound(DomainError):
    message = "Sorry, that no longer exists."


class InvalidInput(DomainError):
    message = "Sorry, I could not understand that."

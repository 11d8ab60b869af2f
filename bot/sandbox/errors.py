"""Telegram-shaped errors of the sandbox Bot API server.

Every failure of a Bot API method is raised as :class:`ApiError` and answered with Telegram's
envelope ``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}``.
The helpers build descriptions the way the real server does: ``bad_request("Message text is
empty")`` becomes ``"Bad Request: message text is empty"`` (the first letter is lowered unless
the text is an upper-case error name such as ``BUTTON_DATA_INVALID``).
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]

MESSAGE_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"


class ApiError(Exception):
    """An error answer of the Bot API (HTTP status == ``error_code``)."""

    def __init__(
        self, error_code: int, description: str, parameters: JsonObject | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def to_json(self) -> JsonObject:
        body: JsonObject = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body

    def __repr__(self) -> str:
        return f"ApiError({self.error_code}, {self.description!r})"


def _with_prefix(prefix: str, message: str) -> str:
    if message.startswith(prefix):
        return message
    if len(message) >= 2 and (message[1] == "_" or "A" <= message[1] <= "Z"):
        return f"{prefix}: {message}"
    return f"{prefix}: {message[:1].lower()}{message[1:]}"


def bad_request(message: str) -> ApiError:
    """400 ``Bad Request: <message>``."""
    return ApiError(400, _with_prefix("Bad Request", message))


def forbidden(message: str) -> ApiError:
    """403 ``Forbidden: <message>``."""
    return ApiError(403, _with_prefix("Forbidden", message))


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized")


def not_found() -> ApiError:
    """What Telegram answers for an unknown method or a malformed token."""
    return ApiError(404, "Not Found")


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


def too_many_requests(retry_after: int) -> ApiError:
    retry_after = max(1, int(retry_after))
    return ApiError(
        429,
        f"Too Many Requests: retry after {retry_after}",
        {"retry_after": retry_after},
    )


def entity_too_large() -> ApiError:
    return ApiError(413, "Request Entity Too Large")


def internal_error() -> ApiError:
    return ApiError(500, "Internal Server Error")


def not_implemented(method: str) -> ApiError:
    """For a real Bot API method that the sandbox does not emulate (never sent by Telegram)."""
    return ApiError(501, f"Not Implemented: the sandbox does not emulate {method}")

"""The sandbox: a faithful fake Telegram Bot API server, its user side, and a web chat page.

No machine here reaches Telegram.  The unmodified bot talks to this server instead, through
aiogram's ``TelegramAPIServer.from_base(url)``; end-to-end tests drive named personas through
the control API; ``gridbot sandbox`` serves the same server with a chat page for trainees.

In process::

    from bot.sandbox import SandboxServer, run_sandbox

    server = SandboxServer()
    server.register_bot(token, username="gridbot")
    async with run_sandbox(server, port=8081, web=True) as sandbox:
        bot = Bot(token, session=AiohttpSession(api=sandbox.telegram_api_server()))
        ...

See :mod:`bot.sandbox.app` for the HTTP routes and :mod:`bot.sandbox.client` for the typed
control-API client and :class:`~bot.sandbox.client.Persona`.
"""

from bot.sandbox.app import RunningSandbox, create_app, run_sandbox
from bot.sandbox.client import ChatMessage, Persona, SandboxClient, SandboxClientError, Transcript
from bot.sandbox.clock import ManualClock
from bot.sandbox.errors import ApiError
from bot.sandbox.faults import Faults
from bot.sandbox.ratelimit import RateLimits
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import SandboxError, SandboxUser
from bot.sandbox.updates import WebhookSettings

__all__ = [
    "ApiError",
    "ChatMessage",
    "Faults",
    "ManualClock",
    "Persona",
    "RateLimits",
    "RunningSandbox",
    "SandboxClient",
    "SandboxClientError",
    "SandboxError",
    "SandboxServer",
    "SandboxUser",
    "Transcript",
    "WebhookSettings",
    "create_app",
    "run_sandbox",
]

"""The sandbox over HTTP: the Bot API, file downloads, the control API and the web chat page.

Routes
------
Bot side (what aiogram talks to via ``TelegramAPIServer.from_base(url)``):

* ``GET|POST /bot<token>/<method>`` — a Bot API call (JSON, form, multipart or query string)
* ``GET /file/bot<token>/<file_path>`` — download a file ``getFile`` described

User side and test control (JSON; answers ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": "..."}``), all under ``/sandbox/api``:

* ``GET  /info`` — spec version, emulated methods, bots and users
* ``GET|POST /bots`` — list / register a bot ``{token, username?, first_name?, group_privacy?}``
* ``GET|POST /users``, ``GET /users/{user_id}`` — list / create / get a person (``group``
  and ``note`` label them on the web page)
* ``POST /bots/{bot}/groups`` — a group ``{title, member_ids}``
* ``POST /bots/{bot}/users/{user_id}/{action}`` — a person acts: ``send``, ``start``,
  ``photo``, ``document``, ``location``, ``contact``, ``press``, ``press_reply``, ``edit``,
  ``block``, ``unblock``, ``forge_press`` (see :func:`_act`)
* ``GET  /bots/{bot}/chats/{chat_id}`` — the transcript as the person sees it
* ``GET  /bots/{bot}/chats/{chat_id}/events?after=SEQ&timeout=S`` — long-poll chat events
* ``GET  /bots/{bot}/chats/{chat_id}/next_message?after=MESSAGE_ID&timeout=S``
* ``GET  /stats``, ``POST /stats/reset``, ``POST /reset``
* ``PUT|DELETE /faults``, ``POST /faults/storm``, ``POST /clock/advance``
* ``PUT /rate_limits`` — any :class:`~bot.sandbox.ratelimit.RateLimits` field (``model``:
  ``bucket`` or ``sliding``), plus ``scale``

``GET /sandbox/files/{file_id}`` serves any file to the user side; ``/`` and ``/static/`` serve
the web chat page when the app is created with ``web=True``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

from bot.sandbox.clock import ManualClock
from bot.sandbox.errors import ApiError, internal_error, not_found
from bot.sandbox.faults import FaultKind, Faults
from bot.sandbox.media import image_size
from bot.sandbox.params import MAX_REQUEST_BYTES, check_utf8, read_request_params
from bot.sandbox.ratelimit import RateLimits
from bot.sandbox.server import SandboxServer
from bot.sandbox.spec import UploadedFile
from bot.sandbox.state import SandboxError

JsonObject = dict[str, Any]

log = logging.getLogger(__name__)

aiohttp_web = web  # ``web`` is also the name of create_app's flag for the chat page
SERVER_KEY = web.AppKey("sandbox_server", SandboxServer)
MAX_WAIT = 60.0
_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


def _server(request: web.Request) -> SandboxServer:
    return request.app[SERVER_KEY]


# ---------------------------------------------------------------------------------------------
# Bot API


def _drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the connection without an answer (the client sees a disconnect)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError


async def _bot_api(request: web.Request) -> web.StreamResponse:
    server = _server(request)
    token = request.match_info["token"]
    method = request.match_info["method"]
    spec = server.spec.method(method)
    server.stats.requests[spec.name if spec else method] += 1
    faults = server.faults
    seq = faults.arrived()
    raw: dict[str, Any] = {}
    response: web.StreamResponse
    try:
        bot = server.authenticate(token)
        if spec is None:
            raise not_found()
        decision = faults.decide(method)
        raw = await read_request_params(request)
        if decision.latency:  # the request has arrived: a client that stops waiting leaves
            await asyncio.sleep(decision.latency)  # it ambiguous (it is carried out)
        if decision.kind is FaultKind.DROP:
            server.stats.faults["drop"] += 1
            faults.record(seq, method, raw, "drop", acted=False, answered=False)
            return _drop_connection(request)
        if decision.kind is FaultKind.ERROR:
            outcome = f"error_{decision.error_code}"
            server.stats.faults[outcome] += 1
            server.stats.statuses[decision.error_code] += 1
            faults.record(seq, method, raw, outcome, acted=False, answered=True)
            if decision.error_code == 502:
                return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
            return _json(internal_error().to_json(), 500)
        result, description = await server.api.call(bot, method, raw)
        if decision.kind is FaultKind.LOST_RESPONSE:
            server.stats.faults["lost_response"] += 1
            faults.record(
                seq, method, raw, "lost_response", acted=True, answered=False, result=result
            )
            return _drop_connection(request)
        if request.transport is None or request.transport.is_closing():  # it stopped waiting
            faults.record(seq, method, raw, "abandoned", acted=True, answered=False, result=result)
        else:
            faults.record(seq, method, raw, "ok", acted=True, answered=True, result=result)
        body: JsonObject = {"ok": True, "result": result}
        if description:
            body["description"] = description
        response = _json(body)
    except ApiError as error:  # the Bot API refuses before it does anything
        outcome = "429" if error.error_code == 429 else "refused"
        faults.record(seq, method, raw, outcome, acted=False, answered=True)
        response = _json(error.to_json(), error.error_code)
    except Exception:
        log.exception("sandbox failed on %s", method)
        response = _json(internal_error().to_json(), 500)
    server.stats.statuses[response.status] += 1
    return response


async def _bot_file(request: web.Request) -> web.StreamResponse:
    server = _server(request)
    try:
        server.authenticate(request.match_info["token"])
    except ApiError as error:
        return _json(error.to_json(), error.error_code)
    stored = server.files.by_path(request.match_info["path"])
    if stored is None:
        return _json(not_found().to_json(), 404)
    return _file_response(stored.data, stored.mime_type, stored.file_name)


def _file_response(data: bytes, mime_type: str | None, file_name: str | None) -> web.Response:
    content_type = mime_type or "application/octet-stream"
    if image_size(data) is not None and not mime_type:
        content_type = _image_type(data)
    headers = {}
    if file_name:
        quoted = file_name.replace('"', "")
        headers["Content-Disposition"] = f"inline; filename*=UTF-8''{_url_quote(quoted)}"
    return web.Response(body=data, content_type=content_type, headers=headers)


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:3] == b"GIF":
        return "image/gif"
    if data.startswith(b"RIFF"):
        return "image/webp"
    if data.startswith(b"BM"):
        return "image/bmp"
    return "image/jpeg"


def _url_quote(text: str) -> str:
    return quote(text, safe="")


# ---------------------------------------------------------------------------------------------
# control API

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ok(result: Any) -> web.Response:
    return _json({"ok": True, "result": result})


def _fail(status: int, description: str) -> web.Response:
    return _json({"ok": False, "error_code": status, "description": description}, status)


@web.middleware
async def _control_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/sandbox/"):
        return await handler(request)
    try:
        return await handler(request)
    except SandboxError as error:
        return _fail(error.status, error.message)
    except ApiError as error:
        return _fail(error.error_code, error.description)
    except (KeyError, TypeError, ValueError) as error:
        return _fail(400, f"bad request: {error}")
    except web.HTTPException:
        raise
    except Exception:
        log.exception("sandbox control API failed on %s", request.path)
        return _fail(500, "internal error")


async def _body(request: web.Request) -> JsonObject:
    if not request.body_exists:
        return {}
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await read_request_params(request)
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise SandboxError(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise SandboxError(400, "the body must be a JSON object")
    check_utf8(body)
    return body


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SandboxError(400, f"{name} must be an integer") from None


def _opt_int(body: JsonObject, name: str) -> int | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    return _int(value, name)


def _opt_str(body: JsonObject, name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SandboxError(400, f"{name} must be a string")
    return value


def _wait_seconds(request: web.Request) -> float:
    try:
        seconds = float(request.query.get("timeout", "0"))
    except ValueError:
        raise SandboxError(400, "timeout must be a number") from None
    return max(0.0, min(MAX_WAIT, seconds))


def _bot_ref(request: web.Request) -> str:
    return request.match_info["bot"]


async def _info(request: web.Request) -> web.Response:
    server = _server(request)
    return _ok(
        {
            "bot_api_version": server.spec.version,
            "spec_origin": server.spec.origin,
            "methods": server.api.implemented,
            "bots": [bot.to_json() for bot in server.bots.values()],
            "users": [user.to_json() for user in server.users.values()],
        }
    )


async def _list_bots(request: web.Request) -> web.Response:
    return _ok([bot.to_json() for bot in _server(request).bots.values()])


async def _register_bot(request: web.Request) -> web.Response:
    body = await _body(request)
    token = _opt_str(body, "token")
    if token is None:
        raise SandboxError(400, "token is required")
    bot = _server(request).register_bot(
        token,
        username=_opt_str(body, "username"),
        first_name=_opt_str(body, "first_name"),
        group_privacy=bool(body.get("group_privacy", True)),
    )
    return _ok(bot.to_json())


async def _list_users(request: web.Request) -> web.Response:
    return _ok([user.to_json() for user in _server(request).users.values()])


async def _create_user(request: web.Request) -> web.Response:
    body = await _body(request)
    first_name = _opt_str(body, "first_name")
    if first_name is None:
        raise SandboxError(400, "first_name is required")
    user = _server(request).create_user(
        first_name,
        last_name=_opt_str(body, "last_name"),
        username=_opt_str(body, "username"),
        language_code=_opt_str(body, "language_code") if "language_code" in body else "zh-hans",
        phone_number=_opt_str(body, "phone_number"),
        user_id=_opt_int(body, "id"),
        group=_opt_str(body, "group"),
        note=_opt_str(body, "note"),
    )
    return _ok(user.to_json())


async def _get_user(request: web.Request) -> web.Response:
    user = _server(request).get_user(_int(request.match_info["user_id"], "user_id"))
    return _ok(user.to_json())


async def _create_group(request: web.Request) -> web.Response:
    body = await _body(request)
    title = _opt_str(body, "title") or ""
    members = body.get("member_ids") or []
    if not isinstance(members, list):
        raise SandboxError(400, "member_ids must be a list")
    chat = _server(request).create_group(
        _bot_ref(request), title, [_int(m, "member_ids") for m in members]
    )
    return _ok(chat)


def _file_bytes(body: JsonObject, name: str) -> list[tuple[bytes, str | None, str | None]]:
    """Files of an action: multipart parts named ``name`` (repeatable as name, name1, ...), or
    base64 in JSON (``data_base64`` or ``photos_base64``)."""
    found: list[tuple[bytes, str | None, str | None]] = []
    for key, value in body.items():
        if isinstance(value, UploadedFile) and (key == name or key.startswith(name)):
            found.append((value.data, value.filename, value.content_type))
    encoded = body.get("data_base64")
    many = body.get(f"{name}s_base64")
    items = [encoded] if isinstance(encoded, str) else []
    if isinstance(many, list):
        items += [item for item in many if isinstance(item, str)]
    for item in items:
        try:
            found.append((base64.b64decode(item, validate=True), None, None))
        except (binascii.Error, ValueError):
            raise SandboxError(400, "invalid base64 data") from None
    return found


async def _act(request: web.Request) -> web.Response:
    """One action of a person; ``{bot}`` is a bot id or username."""
    server = _server(request)
    bot = _bot_ref(request)
    user_id = _int(request.match_info["user_id"], "user_id")
    action = request.match_info["action"]
    body = await _body(request)
    chat_id = _opt_int(body, "chat_id")
    result: Any
    if action == "send":
        text = body.get("text")
        if not isinstance(text, str):
            raise SandboxError(400, "text is required")
        result = server.send_text(
            bot,
            user_id,
            text,
            chat_id=chat_id,
            reply_to_message_id=_opt_int(body, "reply_to_message_id"),
        )
    elif action == "start":
        result = server.start(bot, user_id, _opt_str(body, "payload"))
    elif action == "photo":
        photos = [data for data, _, _ in _file_bytes(body, "photo")]
        result = server.send_photos(
            bot, user_id, photos, caption=_opt_str(body, "caption"), chat_id=chat_id
        )
    elif action == "document":
        files = _file_bytes(body, "document")
        if len(files) != 1:
            raise SandboxError(400, "send exactly one document")
        data, filename, content_type = files[0]
        result = server.send_document(
            bot,
            user_id,
            data,
            filename=_opt_str(body, "filename") or filename or "file",
            mime_type=_opt_str(body, "mime_type") or content_type,
            caption=_opt_str(body, "caption"),
            chat_id=chat_id,
        )
    elif action == "location":
        result = server.send_location(
            bot,
            user_id,
            float(body["latitude"]),
            float(body["longitude"]),
            chat_id=chat_id,
        )
    elif action == "contact":
        result = server.share_contact(
            bot, user_id, _opt_str(body, "phone_number"), chat_id=chat_id
        )
    elif action == "press":
        result = server.press_button(
            bot,
            user_id,
            text=_opt_str(body, "text"),
            callback_data=_opt_str(body, "callback_data"),
            message_id=_opt_int(body, "message_id"),
            chat_id=chat_id,
        )
    elif action == "forge_press":
        forged = _opt_str(body, "callback_data")
        if forged is None:
            raise SandboxError(400, "callback_data is required")
        result = server.forge_callback_query(
            bot, user_id, forged, message_id=_opt_int(body, "message_id"), chat_id=chat_id
        )
    elif action == "press_reply":
        text = _opt_str(body, "text")
        if text is None:
            raise SandboxError(400, "text is required")
        location = None
        if body.get("latitude") is not None and body.get("longitude") is not None:
            location = (float(body["latitude"]), float(body["longitude"]))
        result = server.press_reply_button(bot, user_id, text, chat_id=chat_id, location=location)
    elif action == "edit":
        message_id = _opt_int(body, "message_id")
        text = body.get("text")
        if message_id is None or not isinstance(text, str):
            raise SandboxError(400, "message_id and text are required")
        result = server.edit_text(bot, user_id, message_id, text)
    elif action == "block":
        server.block_bot(bot, user_id)
        result = True
    elif action == "unblock":
        server.unblock_bot(bot, user_id)
        result = True
    else:
        raise SandboxError(404, f"unknown action {action!r}")
    if action in _MESSAGE_ACTIONS:
        result = (
            [server.view_of(bot, m) for m in result]
            if isinstance(result, list)
            else (server.view_of(bot, result))
        )
    return _ok(result)


# Actions whose result is a message (or an album), answered as the user sees it.
_MESSAGE_ACTIONS = frozenset(
    {"send", "start", "photo", "document", "location", "contact", "press_reply", "edit"}
)


async def _transcript(request: web.Request) -> web.Response:
    chat_id = _int(request.match_info["chat_id"], "chat_id")
    return _ok(_server(request).transcript(_bot_ref(request), chat_id))


async def _events(request: web.Request) -> web.Response:
    chat_id = _int(request.match_info["chat_id"], "chat_id")
    after = _int(request.query.get("after", "0"), "after")
    events = await _server(request).wait_events(
        _bot_ref(request), chat_id, after, _wait_seconds(request)
    )
    return _ok(events)


async def _next_message(request: web.Request) -> web.Response:
    chat_id = _int(request.match_info["chat_id"], "chat_id")
    after = _int(request.query.get("after", "0"), "after")
    message = await _server(request).wait_bot_message(
        _bot_ref(request), chat_id, after, _wait_seconds(request)
    )
    return _ok(message)


async def _stats(request: web.Request) -> web.Response:
    return _ok(_server(request).stats.to_json())


async def _reset_stats(request: web.Request) -> web.Response:
    _server(request).stats.reset()
    return _ok(True)


async def _reset(request: web.Request) -> web.Response:
    _server(request).reset()
    return _ok(True)


async def _set_faults(request: web.Request) -> web.Response:
    body = await _body(request)
    known = {f.name for f in fields(Faults)}
    unknown = set(body) - known - {"seed"}
    if unknown:
        raise SandboxError(400, f"unknown fault settings: {sorted(unknown)}")
    settings: JsonObject = {k: v for k, v in body.items() if k in known}
    if "error_codes" in settings:
        settings["error_codes"] = tuple(int(code) for code in settings["error_codes"])
    if settings.get("methods") is not None:
        settings["methods"] = frozenset(str(m) for m in settings["methods"])
    seed = _opt_int(body, "seed")
    _server(request).set_faults(Faults(**settings), seed=seed)
    return _ok(True)


async def _clear_faults(request: web.Request) -> web.Response:
    _server(request).clear_faults()
    return _ok(True)


async def _storm(request: web.Request) -> web.Response:
    body = await _body(request)
    _server(request).start_429_storm(float(body["duration"]), _int(body["retry_after"], "retry"))
    return _ok(True)


async def _rate_limits(request: web.Request) -> web.Response:
    body = await _body(request)
    known = {f.name for f in fields(RateLimits)}
    unknown = set(body) - known - {"scale"}
    if unknown:
        raise SandboxError(400, f"unknown rate-limit settings: {sorted(unknown)}")
    limits = RateLimits(**{k: v for k, v in body.items() if k in known})
    if body.get("scale") is not None:
        limits = limits.scaled(float(body["scale"]))
    _server(request).set_rate_limits(limits)
    return _ok(True)


async def _advance_clock(request: web.Request) -> web.Response:
    server = _server(request)
    clock = getattr(server.clock, "__self__", None)
    if not isinstance(clock, ManualClock):
        raise SandboxError(409, "this sandbox runs on the real clock")
    body = await _body(request)
    clock.advance(float(body["seconds"]))
    return _ok({"now": server.now().isoformat()})


async def _user_file(request: web.Request) -> web.StreamResponse:
    stored = _server(request).files.get(request.match_info["file_id"])
    if stored is None:
        raise SandboxError(404, "no such file")
    return _file_response(stored.data, stored.mime_type, stored.file_name)


# ---------------------------------------------------------------------------------------------
# web page


def _static_dir() -> Path:
    return Path(str(resources.files("bot.sandbox").joinpath("static")))


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(_static_dir() / "index.html", headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------------------------------------


def create_app(
    server: SandboxServer,
    *,
    web: bool = False,
    web_page: bool = False,
    routes: Sequence[aiohttp_web.RouteDef] = (),
) -> aiohttp_web.Application:
    """The aiohttp application serving ``server`` (and the web chat page at ``/`` if ``web``;
    ``web_page`` is the same flag under its earlier name), plus any ``routes`` of the caller's
    (``gridbot sandbox`` adds the bot's /healthz and /metrics)."""
    web = web or web_page
    app = aiohttp_web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[_control_errors])
    app[SERVER_KEY] = server
    router = app.router
    router.add_route("*", "/bot{token}/{method}", _bot_api)
    router.add_get("/file/bot{token}/{path:.+}", _bot_file)
    api = "/sandbox/api"
    router.add_get(f"{api}/info", _info)
    router.add_get(f"{api}/bots", _list_bots)
    router.add_post(f"{api}/bots", _register_bot)
    router.add_get(f"{api}/users", _list_users)
    router.add_post(f"{api}/users", _create_user)
    router.add_get(f"{api}/users/{{user_id}}", _get_user)
    router.add_post(f"{api}/bots/{{bot}}/groups", _create_group)
    router.add_post(f"{api}/bots/{{bot}}/users/{{user_id}}/{{action}}", _act)
    router.add_get(f"{api}/bots/{{bot}}/chats/{{chat_id}}", _transcript)
    router.add_get(f"{api}/bots/{{bot}}/chats/{{chat_id}}/events", _events)
    router.add_get(f"{api}/bots/{{bot}}/chats/{{chat_id}}/next_message", _next_message)
    router.add_get(f"{api}/stats", _stats)
    router.add_post(f"{api}/stats/reset", _reset_stats)
    router.add_post(f"{api}/reset", _reset)
    router.add_put(f"{api}/faults", _set_faults)
    router.add_delete(f"{api}/faults", _clear_faults)
    router.add_post(f"{api}/faults/storm", _storm)
    router.add_put(f"{api}/rate_limits", _rate_limits)
    router.add_post(f"{api}/clock/advance", _advance_clock)
    router.add_get("/sandbox/files/{file_id}", _user_file)
    if web:
        router.add_get("/", _index)
        router.add_static("/static/", _static_dir(), append_version=False)
    router.add_routes(routes)

    async def on_startup(app: aiohttp_web.Application) -> None:
        server.reopen()

    async def on_shutdown(app: aiohttp_web.Application) -> None:
        server.wake_all()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


@dataclass(frozen=True)
class RunningSandbox:
    """A sandbox being served; ``url`` is what ``TelegramAPIServer.from_base`` takes."""

    server: SandboxServer
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def telegram_api_server(self) -> TelegramAPIServer:
        """An aiogram ``TelegramAPIServer`` pointing at this sandbox."""
        return TelegramAPIServer.from_base(self.url)


@contextlib.asynccontextmanager
async def run_sandbox(
    server: SandboxServer | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    web: bool = False,
    web_page: bool = False,
    routes: Sequence[aiohttp_web.RouteDef] = (),
) -> AsyncIterator[RunningSandbox]:
    """Serve a sandbox on ``host:port`` (port 0: a free one) for the duration of the block.

    On exit the HTTP server stops (open long polls end at once) and ``server.aclose()`` stops
    webhook delivery.  ::

        async with run_sandbox(SandboxServer(), web=True) as sandbox:
            bot = Bot(token, session=AiohttpSession(api=sandbox.telegram_api_server()))
    """
    server = server or SandboxServer()
    app = create_app(server, web=web or web_page, routes=routes)
    runner = aiohttp_web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=2.0
    )
    await runner.setup()
    try:
        site = aiohttp_web.TCPSite(runner, host, port)
        await site.start()
        bound_port = port
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                bound_port = int(address[1])
                break
        yield RunningSandbox(server, host, bound_port)
    finally:
        await runner.cleanup()
        await server.aclose()

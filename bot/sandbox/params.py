"""Reading the parameters of a Bot API call from an HTTP message.

Telegram takes parameters from the query string and from the body, which may be JSON,
``application/x-www-form-urlencoded`` or ``multipart/form-data`` (aiogram uses multipart
whenever a file is uploaded, and sends nested objects such as ``reply_markup`` as JSON strings
in form fields).  The same reader serves requests to the server and Bot API calls returned in
webhook responses.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import hdrs, web

from bot.sandbox.errors import ApiError, bad_request, entity_too_large
from bot.sandbox.media import MAX_UPLOAD_BYTES
from bot.sandbox.spec import UploadedFile

MAX_REQUEST_BYTES = MAX_UPLOAD_BYTES + 1024 * 1024
CHUNK = 256 * 1024


def _decode_text(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        raise bad_request("Strings must be encoded in UTF-8") from None


def check_utf8(value: Any) -> None:
    """Lone surrogates (``"\\ud800"`` in JSON) are not UTF-8; Telegram refuses them."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise bad_request("Strings must be encoded in UTF-8") from None
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())


async def read_multipart(reader: aiohttp.MultipartReader, into: dict[str, Any]) -> None:
    """Read every part; file parts become :class:`UploadedFile`, the others strings."""
    total = 0
    while True:
        part = await reader.next()
        if part is None:
            return
        if isinstance(part, aiohttp.MultipartReader):
            await read_multipart(part, into)
            continue
        data = bytearray()
        while chunk := await part.read_chunk(CHUNK):
            data += chunk
            total += len(chunk)
            if total > MAX_REQUEST_BYTES:
                raise entity_too_large()
        name = part.name
        if not name or name in into:
            continue
        if part.filename is not None:
            content_type = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
            into[name] = UploadedFile(part.filename, content_type, bytes(data))
        else:
            into[name] = _decode_text(bytes(data), part.get_charset("utf-8"))


def _parse_json_body(raw: bytes, into: dict[str, Any]) -> None:
    if not raw.strip():
        return
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request("Can't parse JSON object") from None
    if not isinstance(body, dict):
        raise bad_request("Can't parse JSON object")
    check_utf8(body)
    for key, value in body.items():
        into.setdefault(key, value)


def _parse_form(raw: bytes, charset: str | None, into: dict[str, Any]) -> None:
    text = _decode_text(raw, charset)
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise bad_request("Strings must be encoded in UTF-8") from None
    for key, value in pairs:
        into.setdefault(key, value)


async def read_request_params(request: web.Request) -> dict[str, Any]:
    """Parameters of a Bot API request: query string first, then the body."""
    params: dict[str, Any] = {}
    for key, value in request.query.items():
        params.setdefault(key, value)
    check_utf8(params)
    if not request.body_exists:
        return params
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        raise entity_too_large()
    content_type = request.content_type
    if content_type == "multipart/form-data":
        try:
            reader = await request.multipart()
            await read_multipart(reader, params)
        except (ValueError, AssertionError, aiohttp.ClientPayloadError):
            raise bad_request("Can't parse multipart/form-data request") from None
        return params
    raw = await _read_limited(request)
    if content_type == "application/json":
        _parse_json_body(raw, params)
    elif content_type == "application/x-www-form-urlencoded":
        _parse_form(raw, request.charset, params)
    return params


async def _read_limited(request: web.Request) -> bytes:
    data = bytearray()
    while chunk := await request.content.read(CHUNK):
        data += chunk
        if len(data) > MAX_REQUEST_BYTES:
            raise entity_too_large()
    return bytes(data)


async def read_response_params(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """A Bot API call a webhook answered with (JSON, form or multipart), or ``{}``."""
    params: dict[str, Any] = {}
    try:
        if response.content_type == "multipart/form-data":
            reader = aiohttp.MultipartReader(response.headers, response.content)
            await read_multipart(reader, params)
            return params
        raw = await response.read()
        if response.content_type == "application/x-www-form-urlencoded":
            _parse_form(raw, response.charset, params)
        else:
            _parse_json_body(raw, params)
    except (ApiError, ValueError, AssertionError, aiohttp.ClientError):
        return {}
    return params

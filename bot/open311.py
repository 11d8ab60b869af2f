"""Open311 GeoReport v2 over HTTP: the standard civic-issue API that FixMyStreet, SeeClickFix
and cities' 311 systems speak, for partner apps to read the public board and file reports.

Under ``/open311/v2``, each in JSON (``.json``) and XML (``.xml``):

- ``GET discovery`` — where this endpoint is and which formats it speaks;
- ``GET services`` — the report categories; ``GET services/{code}`` — one (no attributes);
- ``GET requests`` — the public view of tickets (:mod:`bot.services.open311`), filtered by
  ``start_date``/``end_date`` (ISO 8601; the last 90 days by default, 90 days at most),
  ``status`` (``open``, ``closed``), ``service_code`` and ``service_request_id`` (each
  comma-separated), newest first, at most 1000; ``GET requests/{id}`` — one;
- ``POST requests`` — a partner's report (form-encoded, with its ``api_key``), filed as a
  ticket: ``service_code``, ``description``, ``lat``+``long`` or ``address_string``, and the
  caller's ``email``/``first_name``/``last_name``/``phone`` if given (never shown again).

Errors are the spec's: ``[{"code": 400, "description": "…"}]`` or
``<errors><error><code>400</code><description>…</description></error></errors>``, with the
code as the HTTP status: 400 for a bad parameter, 403 for a missing or unknown key, 404 for
an unknown service or request, 429 over the key's report limits. They are in English: they
are read by the developers of partner apps; what a resident reads (service names, status
notes, the service notice) is in the configured default language.

Served where /healthz and /metrics are (:mod:`bot.watch`): on the webhook's server, on the
watch port when polling, and beside the sandbox's chat page.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

from aiohttp import web
from multidict import MultiMapping

from bot.errors import DomainError, InvalidInput
from bot.i18n import gettext_for
from bot.services import open311
from bot.services.open311 import MAX_RESULTS, SPAN, RequestQuery, Status, Submission
from bot.services.tickets import Muted, TooManyReports

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

BASE = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-12-07T00:00:00Z"  # when this endpoint's behaviour last changed
FORMATS = {"json": "application/json", "xml": "text/xml"}
MAX_VALUE = 200  # characters of any parameter but the description
MAX_DESCRIPTION = 4000  # the spec's limit; the ticket kernel's own is stricter
MAX_IDS = 100  # service_request_id values in one listing
# characters XML 1.0 cannot carry at all (control characters but tab, LF and CR; surrogates)
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

TICKET_NUMBER = re.compile(r"[\w-]{1,40}")
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

Handler = Callable[[web.Request], Awaitable[web.Response]]


class ApiError(Exception):
    """An answer in the spec's error format, ``code`` also being the HTTP status."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


# --- parameters ------------------------------------------------------------------------------


def single(params: MultiMapping[object], name: str, *, limit: int = MAX_VALUE) -> str | None:
    """The one value of ``name`` (stripped; ``None`` when absent or empty)."""
    values = params.getall(name, [])
    if len(values) > 1:
        raise ApiError(400, f"{name} was given more than once")
    if not values:
        return None
    value = str(values[0])
    if len(value) > limit:
        raise ApiError(400, f"{name} is longer than {limit} characters")
    if "\x00" in value:
        raise ApiError(400, f"{name} holds a NUL character")
    return value.strip() or None


def listed(params: MultiMapping[object], name: str) -> list[str]:
    """A comma-separated parameter's values (the spec's "comma delimited")."""
    value = single(params, name, limit=MAX_VALUE * 20)
    if value is None:
        return []
    items = [item.strip() for item in value.split(",")]
    if any(not item for item in items):
        raise ApiError(400, f"{name} has an empty item")
    return items


def parse_time(value: str, name: str, now: datetime) -> datetime:
    """A W3C/ISO 8601 date-time (``2026-12-01T00:00:00Z``, an offset, or a bare date, read in
    the endpoint's time zone)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"{name} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=now.tzinfo)
    return moment


def requests_query(params: MultiMapping[object], now: datetime) -> RequestQuery:
    """``GET requests``' filters, refused with a 400 when malformed."""
    numbers = tuple(listed(params, "service_request_id"))
    if len(numbers) > MAX_IDS:
        raise ApiError(400, f"at most {MAX_IDS} service_request_id values at once")
    start_text = single(params, "start_date")
    end_text = single(params, "end_date")
    start = parse_time(start_text, "start_date", now) if start_text else None
    end = parse_time(end_text, "end_date", now) if end_text else None
    if start is None and end is None:
        end = now
    if start is None:
        assert end is not None
        start = end - SPAN
    if end is None:
        end = start + SPAN
    if start > end:
        raise ApiError(400, "start_date is after end_date")
    if end - start > SPAN:
        raise ApiError(400, f"the dates may not span more than {SPAN.days} days")
    statuses = set()
    for item in listed(params, "status"):
        if item.lower() not in {status.value for status in Status}:
            raise ApiError(400, "status must be open or closed (comma-separated)")
        statuses.add(Status(item.lower()))
    categories = set()
    for item in listed(params, "service_code"):
        category = open311.category_of(item)
        if category is None:
            raise ApiError(400, f"unknown service_code: {item[:40]}")
        categories.add(category)
    return RequestQuery(start, end, frozenset(statuses), frozenset(categories), numbers)


def coordinate(params: MultiMapping[object], name: str, bound: float) -> float | None:
    value = single(params, name, limit=40)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ApiError(400, f"{name} is not a number") from None
    if not math.isfinite(number) or abs(number) > bound:
        raise ApiError(400, f"{name} must lie between -{bound:g} and {bound:g}")
    return number


def submission(params: MultiMapping[object]) -> Submission:
    """``POST requests``' parameters, refused with a 400 when malformed or missing."""
    code = single(params, "service_code")
    if code is None:
        raise ApiError(400, "service_code is required")
    category = open311.category_of(code)
    if category is None:
        raise ApiError(404, f"service_code {code[:40]} not found")
    latitude = coordinate(params, "lat", 90)
    longitude = coordinate(params, "long", 180)
    if (latitude is None) != (longitude is None):
        raise ApiError(400, "lat and long go together")
    address = single(params, "address_string", limit=300)
    if latitude is None and address is None:
        if single(params, "address_id") is not None:
            raise ApiError(
                400, "address_id is not supported: send lat and long, or address_string"
            )
        raise ApiError(400, "a location is required: lat and long, or address_string")
    description = single(params, "description", limit=MAX_DESCRIPTION)
    if description is None:
        raise ApiError(400, "description is required")
    email = single(params, "email", limit=254)
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        raise ApiError(400, "email is not an e-mail address")
    phone = single(params, "phone", limit=32)
    if phone is not None and not re.fullmatch(r"\+?[0-9][0-9 ()-]*", phone):
        raise ApiError(400, "phone is not a phone number")
    return Submission(
        category=category,
        description=description,
        latitude=latitude,
        longitude=longitude,
        address=address,
        email=email,
        first_name=single(params, "first_name", limit=100),
        last_name=single(params, "last_name", limit=100),
        phone=phone,
    )


# --- rendering -------------------------------------------------------------------------------


def _xml_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    # a parser reads CR and CRLF as LF (XML's end-of-line rule): written so, it reads the same
    return NOT_XML.sub("", str(value)).replace("\r\n", "\n").replace("\r", "\n")


def _xml_fill(element: ElementTree.Element, value: Any, item_tag: str) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _xml_fill(ElementTree.SubElement(element, key), inner, key.removesuffix("s"))
    elif isinstance(value, list):
        for inner in value:
            _xml_fill(ElementTree.SubElement(element, item_tag), inner, item_tag)
    else:
        element.text = _xml_text(value)


def to_xml(root: str, item: str, value: Any) -> bytes:
    """``value`` (a list of records, or one record) as the spec's XML: lists become repeated
    ``item`` elements (``endpoints`` → ``endpoint``, ``formats`` → ``format`` inside)."""
    element = ElementTree.Element(root)
    _xml_fill(element, value, item)
    # the spec asks for the declaration with encoding="UTF-8", as written here
    return XML_DECLARATION + bytes(ElementTree.tostring(element, encoding="utf-8"))


def answer(fmt: str, value: Any, *, root: str, item: str, status: int = 200) -> web.Response:
    if fmt == "xml":
        body = to_xml(root, item, value)
    else:
        body = json.dumps(value, ensure_ascii=False).encode("utf-8")
    return web.Response(
        body=body,
        status=status,
        content_type=FORMATS.get(fmt, "application/json"),
        charset="utf-8",
    )


def error(fmt: str, code: int, description: str) -> web.Response:
    body = [{"code": code, "description": description}]
    return answer(fmt, body, root="errors", item="error", status=code)


def _format(request: web.Request) -> str:
    fmt = request.match_info.get("format", "json").lower()
    if fmt not in FORMATS:
        raise ApiError(404, "only .json and .xml are served")
    return fmt


def _record(request: open311.PublicRequest) -> dict[str, Any]:
    return {
        "service_request_id": request.service_request_id,
        "status": request.status.value,
        "status_notes": request.status_notes,
        "service_name": request.service_name,
        "service_code": request.service_code,
        "description": request.description,
        "agency_responsible": request.agency_responsible,
        "service_notice": None,
        "requested_datetime": request.requested_datetime,
        "updated_datetime": request.updated_datetime,
        "expected_datetime": None,
        "address": request.address,
        "address_id": None,
        "zipcode": None,
        "lat": request.lat,
        "long": request.long,
        "media_url": None,
    }


class Open311:
    """The endpoint's routes, bound to the bot's :class:`~bot.app.App` once it exists."""

    def __init__(self, app: App | None = None) -> None:
        self.app = app

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(BASE + "/discovery.{format}", self._guarded(self.discovery)),
            web.get(BASE + "/services.{format}", self._guarded(self.services)),
            web.get(BASE + "/services/{code}.{format}", self._guarded(self.service)),
            web.get(BASE + "/requests.{format}", self._guarded(self.requests)),
            web.post(BASE + "/requests.{format}", self._guarded(self.create)),
            web.get(BASE + "/requests/{id}.{format}", self._guarded(self.request)),
        ]

    def _guarded(self, handler: Handler) -> Handler:
        """Every failure answered in the spec's error format, in the format asked for."""

        async def guarded(request: web.Request) -> web.Response:
            fmt = request.match_info.get("format", "json").lower()
            fmt = fmt if fmt in FORMATS else "json"
            try:
                return await handler(request)
            except ApiError as refusal:
                return error(fmt, refusal.code, refusal.description)
            except web.HTTPException as refusal:  # a body too large, say
                return error(fmt, refusal.status, refusal.reason)
            except Exception:
                log.exception("Open311 %s %s failed", request.method, request.path)
                return error(fmt, 500, "the request could not be handled; please try later")

        return guarded

    def _app(self) -> App:
        if self.app is None:
            raise ApiError(503, "starting; please try again in a moment")
        return self.app

    async def discovery(self, request: web.Request) -> web.Response:
        fmt = _format(request)
        settings = self._app().settings
        url = f"{request.url.origin()}{BASE}"
        body = {
            "changeset": CHANGESET,
            "contact": settings.open311.contact or "the administrators of this GridBot",
            "key_service": "API keys are issued by an administrator with /apikey new <partner>",
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": url,
                    "changeset": CHANGESET,
                    "type": "production",
                    "formats": list(FORMATS.values()),
                }
            ],
        }
        return answer(fmt, body, root="discovery", item="endpoint")

    async def services(self, request: web.Request) -> web.Response:
        fmt = _format(request)
        locale = self._app().settings.default_locale
        body = [_service(service) for service in open311.service_list(locale)]
        return answer(fmt, body, root="services", item="service")

    async def service(self, request: web.Request) -> web.Response:
        fmt = _format(request)
        self._app()
        if open311.category_of(request.match_info["code"]) is None:
            raise ApiError(404, "no such service_code")
        body = {"service_code": request.match_info["code"], "attributes": []}
        return answer(fmt, body, root="service_definition", item="attribute")

    async def requests(self, request: web.Request) -> web.Response:
        fmt = _format(request)
        app = self._app()
        query = requests_query(request.query, app.clock.now().astimezone(app.settings.tz))
        async with app.work.readers() as session:
            found = await open311.public_requests(
                session,
                query,
                locale=app.settings.default_locale,
                tz=app.settings.tz,
                limit=MAX_RESULTS,
            )
        body = [_record(r) for r in found]
        return answer(fmt, body, root="service_requests", item="request")

    async def request(self, request: web.Request) -> web.Response:
        fmt = _format(request)
        app = self._app()
        number = request.match_info["id"]
        if not TICKET_NUMBER.fullmatch(number):  # nothing a database might choke on
            raise ApiError(404, "no such service_request_id")
        async with app.work.readers() as session:
            found = await open311.public_request(
                session, number, locale=app.settings.default_locale, tz=app.settings.tz
            )
        if found is None:
            raise ApiError(404, "no such service_request_id")
        return answer(fmt, [_record(found)], root="service_requests", item="request")

    async def create(self, request: web.Request) -> web.Response:
        fmt = _format(request)
        app = self._app()
        form = await request.post()
        secret = single(form, "api_key") or single(request.query, "api_key")
        async with app.sessions() as session:
            key = await open311.key_for(session, secret or "")
            if key is None:
                raise ApiError(403, "invalid api_key")
            posted = submission(form)
            try:
                filed = await open311.file_request(
                    session,
                    app.dispatcher["notifier"],
                    key=key,
                    submission=posted,
                    settings=app.settings,
                    now=app.clock.now(),
                )
            except TooManyReports as refusal:
                raise ApiError(429, _english(refusal)) from None
            except Muted as refusal:
                raise ApiError(403, _english(refusal)) from None
            except InvalidInput as refusal:
                raise ApiError(400, _english(refusal)) from None
            except DomainError as refusal:
                raise ApiError(400, _english(refusal)) from None
            await session.commit()
        app.sender.wake()  # the owners' notices are queued
        body = [
            {
                "service_request_id": filed.ticket.number,
                "service_notice": filed.notice(app.settings.default_locale),
                "account_id": None,
            }
        ]
        return answer(fmt, body, root="service_requests", item="request")


def _service(service: open311.Service) -> dict[str, Any]:
    return {
        "service_code": service.code,
        "service_name": service.name,
        "description": service.name,
        "metadata": False,
        "type": "realtime",
        "keywords": "",
        "group": "",
    }


def _english(refusal: DomainError) -> str:
    params = {
        k: gettext_for("en", v) if isinstance(v, str) else v for k, v in refusal.params.items()
    }
    return gettext_for("en", refusal.message, **params)

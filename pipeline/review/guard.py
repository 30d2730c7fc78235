"""Who may talk to the review server, and what every answer forbids.

A request must carry the token (`Authorization: Bearer`, the cookie the first page sets, or `?token=` on a page),
or a one-time code the server opened the browser with (exchanged once for the cookie), and be addressed to a Host
this server answers to: loopback names, or the names of a `--host` it was given (a DNS-rebinding page names its
own host). A request that changes something sends JSON from this origin; its body stays under the limit. Every
response forbids framing (clickjacking from another local port) and reads from other sites.
"""
from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 1 << 20  # bytes: a day of segments is a few KB
CODE_S = 60.0  # a one-time code opens the app within this many seconds, once
HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'; default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_HOST = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^\[\]:/@\s]+))(?::\d{1,5})?$")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def cookie_name(port: int) -> str:
    """Browsers share cookies between the ports of one host: each server's cookie is its own."""
    return f"boulderseg_review_{port}"


def host_name(host: str) -> str | None:
    """The name in a Host header, without its port (`[::1]:80` -> `::1`); None for anything else
    (`[::1]evil.example:80`, a path, a user)."""
    if (m := _HOST.match(host)) is None:
        return None
    return (m["v6"] or m["name"]).lower()


def loopback_host(host: str) -> bool:
    """Whether a Host header names this machine's loopback: localhost, 127.x.x.x or [::1], any port."""
    name = host_name(host)
    return name is not None and loopback_address(name)


def loopback_address(address: str) -> bool:
    """Whether an address or name without a port (`--host`) is this machine's loopback."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class Guard:
    """ASGI middleware: Host, token, origin and body-size checks on every HTTP request, and the headers every
    response carries. `names`: Host names besides loopback this server answers to (those of `--host`);
    `secure`: it is served over TLS (the cookie is then `Secure`)."""

    def __init__(self, app: ASGIApp, *, token: str, max_body: int = MAX_BODY, names: Iterable[str] = (),
                 secure: bool = False) -> None:
        self.app, self.token, self.max_body, self.secure = app, token, max_body, secure
        self.names = {n.lower() for n in names}
        self.codes: dict[str, float] = {}  # one-time code -> when it stops opening the app

    def one_time_code(self) -> str:
        """A code that opens the app once, within CODE_S seconds: what the browser is started with, so the
        token is on no command line."""
        code = secrets.token_urlsafe(24)
        self.codes[code] = time.monotonic() + CODE_S
        return code

    def _redeem(self, code: str | None) -> bool:
        expires = self.codes.pop(code, None) if code else None
        return expires is not None and time.monotonic() < expires

    def _authorised(self, request: Request) -> str | None:
        """How the request proves it holds the token ("query", "header", "cookie"), or None."""
        offered = {"query": request.query_params.get("token"),
                   "cookie": request.cookies.get(cookie_name(request.url.port or 80))}
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            offered["header"] = bearer[7:].strip()
        return next((how for how, value in offered.items()
                     if value and hmac.compare_digest(value.encode(), self.token.encode())), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            await send({"type": "websocket.close", "code": 1008})
            return
        send = _with_headers(send)
        request = Request(scope)
        how = self._authorised(request)
        page = request.method == "GET" and not request.url.path.startswith("/api/")
        if how is None and page and self._allowed_host(request) and self._redeem(request.query_params.get("code")):
            how = "query"
        response = self._refusal(request, how)
        if response is None and how == "query" and page:
            response = self._to_cookie(request)
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, _limited(receive, self.max_body), send)

    def _to_cookie(self, request: Request) -> Response:
        """The page again, without the token or code in the address bar (a path, never another site), with the
        cookie set."""
        target = request.url.remove_query_params(["token", "code"])
        redirect = RedirectResponse("/" + target.path.lstrip("/") + (f"?{target.query}" if target.query else ""), 303)
        redirect.set_cookie(cookie_name(request.url.port or 80), self.token, httponly=True, samesite="strict",
                            secure=self.secure)
        return redirect

    def _allowed_host(self, request: Request) -> bool:
        host = request.headers.get("host", "")
        return loopback_host(host) or host_name(host) in self.names

    def _refusal(self, request: Request, how: str | None) -> Response | None:
        if not self._allowed_host(request):
            return PlainTextResponse("refused: this server answers only requests addressed to "
                                     + ", ".join(["127.0.0.1", "localhost", *sorted(self.names)]), status_code=403)
        if how is None:
            return PlainTextResponse("refused: open the address `boulderseg review` printed (it holds the token)",
                                     status_code=403)
        if request.method in ("PUT", "POST", "PATCH", "DELETE"):
            if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                return PlainTextResponse("refused: a change must come from this app's own pages", status_code=403)
            if request.method in ("PUT", "POST") and \
                    request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return PlainTextResponse("send JSON (Content-Type: application/json)", status_code=415)
        if _declared_length(request) > self.max_body:
            return PlainTextResponse("request body too large", status_code=413)
        return None


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in HEADERS.items():
                headers[name] = value
        await send(message)

    return wrapped


def _declared_length(request: Request) -> int:
    """The Content-Length a request declares; one that is not a number counts as too large."""
    try:
        return int(request.headers.get("content-length") or 0)
    except ValueError:
        return 1 << 62


def _limited(receive: Receive, limit: int) -> Callable[[], Awaitable[dict]]:
    """`receive`, failing once a body without (or beyond) its Content-Length passes `limit` bytes."""
    seen = 0

    async def wrapped() -> dict:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
        return message

    return wrapped


class BodyTooLarge(Exception):
    """A request body beyond the limit, sent without a truthful Content-Length."""

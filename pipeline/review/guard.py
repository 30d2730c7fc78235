"""Who may talk to the review server: a request carrying the token (query, `Authorization: Bearer`, or the cookie
the first page sets), addressed to a loopback Host (a DNS-rebinding page names its own host), with a body under
the limit; a request that changes something also sends JSON from this origin (another local site cannot forge
it). Everything else is refused before any route runs."""
from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_BODY = 1 << 20  # bytes: a day of segments is a few KB


def new_token() -> str:
    return secrets.token_urlsafe(24)


def cookie_name(port: int) -> str:
    """Browsers share cookies between the ports of one host: each server's cookie is its own."""
    return f"boulderseg_review_{port}"


def host_name(host: str) -> str:
    """The name in a Host header (or an address), without its port: `[::1]:80` -> `::1`, `::1` -> `::1`."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host if host.count(":") > 1 else host.rsplit(":", 1)[0]


def loopback_host(host: str) -> bool:
    """Whether a Host header names this machine's loopback: localhost, 127.x.x.x or [::1], any port."""
    name = host_name(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Guard:
    """ASGI middleware: token, Host, origin and body-size checks on every HTTP request. `host`: an address given
    with `--host`, whose name is accepted as a Host too (any name when it is every address, 0.0.0.0 or ::)."""

    def __init__(self, app: ASGIApp, *, token: str, max_body: int = MAX_BODY, host: str | None = None) -> None:
        self.app, self.token, self.max_body, self.host = app, token, max_body, host

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
        request = Request(scope)
        response = self._refusal(request)
        if response is not None:
            await response(scope, receive, send)
            return
        how = self._authorised(request)
        if how == "query" and request.method == "GET" and not request.url.path.startswith("/api/"):
            # a page: set the cookie, and drop the token from the address bar (a path, never another site)
            target = request.url.remove_query_params("token")
            redirect = RedirectResponse("/" + target.path.lstrip("/") + (f"?{target.query}" if target.query else ""),
                                        303)
            redirect.set_cookie(cookie_name(request.url.port or 80), self.token, httponly=True, samesite="strict")
            await redirect(scope, receive, send)
            return
        await self.app(scope, _limited(receive, self.max_body), send)

    def _refusal(self, request: Request) -> Response | None:
        host = request.headers.get("host", "")
        if not (loopback_host(host) or self.host in ("0.0.0.0", "::") or  # noqa: S104 - every address: --host
                (self.host is not None and host_name(host) == self.host)):
            return PlainTextResponse("refused: this server answers only requests addressed to 127.0.0.1 or localhost",
                                     status_code=403)
        if self._authorised(request) is None:
            return PlainTextResponse("refused: open the address `boulderseg review` printed (it holds the token)",
                                     status_code=403)
        if request.method not in ("GET", "HEAD"):
            if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                return PlainTextResponse("refused: a change must come from this app's own pages", status_code=403)
            if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return PlainTextResponse("send JSON (Content-Type: application/json)", status_code=415)
        if _declared_length(request) > self.max_body:
            return PlainTextResponse("request body too large", status_code=413)
        return None


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

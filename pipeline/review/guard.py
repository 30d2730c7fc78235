"""Who may talk to the review server: a request carrying the token (query, `Authorization: Bearer`, or the cookie
the first page sets), addressed to a loopback Host (a DNS-rebinding page names its own host), with a body under
the limit. Everything else is refused before any route runs."""
from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "boulderseg_review"
MAX_BODY = 1 << 20  # bytes: a day of segments is a few KB


def new_token() -> str:
    return secrets.token_urlsafe(24)


def loopback_host(host: str) -> bool:
    """Whether a Host header names this machine's loopback: localhost, 127.x.x.x or [::1], any port."""
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Guard:
    """ASGI middleware: token, Host and body-size checks on every HTTP request."""

    def __init__(self, app: ASGIApp, *, token: str, max_body: int = MAX_BODY) -> None:
        self.app, self.token, self.max_body = app, token, max_body

    def _authorised(self, request: Request) -> str | None:
        """How the request proves it holds the token ("query", "header", "cookie"), or None."""
        offered = {"query": request.query_params.get("token"), "cookie": request.cookies.get(COOKIE)}
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
        if response is None and _declared_length(request) > self.max_body:
            response = PlainTextResponse("request body too large", status_code=413)
        if response is not None:
            await response(scope, receive, send)
            return
        how = self._authorised(request)
        if how == "query" and request.method == "GET" and not request.url.path.startswith("/api/"):
            # a page: set the cookie, and drop the token from the address bar
            target = request.url.remove_query_params("token")
            redirect = RedirectResponse(str(target.path) + (f"?{target.query}" if target.query else ""), 303)
            redirect.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            await redirect(scope, receive, send)
            return
        await self.app(scope, _limited(receive, self.max_body), send)

    def _refusal(self, request: Request) -> Response | None:
        if not loopback_host(request.headers.get("host", "")):
            return PlainTextResponse("refused: this server answers only requests addressed to 127.0.0.1 or localhost",
                                     status_code=403)
        if self._authorised(request) is None:
            return PlainTextResponse("refused: open the address `boulderseg review` printed (it holds the token)",
                                     status_code=403)
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

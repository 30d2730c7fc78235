"""`boulderseg review`'s listener: the socket (loopback, or another address only over TLS), connections that
must send their request within HEADER_S, and the browser opened with a one-time code instead of the token."""
from __future__ import annotations

import asyncio
import socket
import webbrowser
from pathlib import Path

from uvicorn.protocols.http.h11_impl import H11Protocol

from pipeline.core.errors import BouldersegError
from pipeline.review.guard import loopback_address, new_token
from pipeline.review.save import tidy
from pipeline.review.server import build

HEADER_S = 10.0  # a connection that has not sent a whole request by then (and is not being answered) is closed


class Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that stay silent or drip their headers (no request in hand
    HEADER_S after the connection or the last response): half-open connections cannot pile up."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._due = self.loop.call_later(HEADER_S, self._late)

    def _late(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._due.cancel()
        self._due = self.loop.call_later(HEADER_S, self._late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._due.cancel()
        super().connection_lost(exc)


def names_of(host: str) -> tuple[str, ...]:
    """The Host names a server on `host` answers to besides loopback: the address itself, or for every address
    (0.0.0.0, ::) this machine's name and addresses."""
    if host not in ("0.0.0.0", "::"):  # noqa: S104 - compared, not bound
        return (host,)
    name = socket.gethostname()
    found = {name, socket.getfqdn()}
    try:
        found |= {info[4][0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        pass
    return tuple(sorted(n.lower() for n in found))


def serve(*, root: Path, params_file: Path, host: str = "127.0.0.1", port: int = 8765, browser: bool = True,
          tls: tuple[Path, Path] | None = None) -> None:
    """Serve the app until Ctrl-C; the first line printed is its address with the token (for scripts). Any
    address but loopback needs `tls` (certificate, key): the token and the sheets would cross the network in
    clear otherwise."""
    import ssl

    import uvicorn

    local = loopback_address(host)
    if not local and tls is None:
        raise BouldersegError(f"--host {host} lets other machines in, so it needs TLS: give --tls-cert CERT.pem and "
                              "--tls-key KEY.pem (the token would cross the network in clear otherwise).")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog from the moment the address is printed
    except OSError as e:
        raise BouldersegError(f"cannot listen on {host}:{port}: {e.strerror}; pick another --port (0: any free one).")
    names = () if local else names_of(host)
    shown = host if local or host not in ("0.0.0.0", "::") else socket.gethostname()  # noqa: S104
    address = f"{'https' if tls else 'http'}://{f'[{shown}]' if ':' in shown else shown}:{sock.getsockname()[1]}"
    token = new_token()
    app = build(root, params_file, token=token, names=names, secure=tls is not None)
    tidy(root)
    print(f"{address}/?token={token}", flush=True)
    if browser:
        webbrowser.open(f"{address}/?code={app.one_time_code()}")
    try:
        config = uvicorn.Config(app, log_level="warning", lifespan="off", http=Protocol,
                                ssl_certfile=tls and str(tls[0]), ssl_keyfile=tls and str(tls[1]))
        config.load()
    except (OSError, ssl.SSLError) as e:
        raise BouldersegError(f"--tls-cert/--tls-key: {e}") from None
    uvicorn.Server(config).run(sockets=[sock])

"""The warm server: takes `python -m stages.NAME` jobs over its Unix socket, one at a time, and runs them in
this process (`runner`), until `idle_seconds` pass without one. Started by the client: `python -m
pipeline.warm.server SOCKET IDLE_SECONDS`.

A connection is served only if it comes from this user (SO_PEERCRED), sends its whole request within
`REQUEST_SECONDS` and names one of this project's stages; anything else is dropped and the server goes on, as
it does past a client that leaves before its ticket.
"""
from __future__ import annotations

import _thread
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.warm.client import HEADER
from pipeline.warm.runner import is_stage_module, process_defaults, run_in_process

REQUEST_SECONDS = 1.0  # a client sends its request at once; one silent this long is dead or not a client
MAX_REQUEST = 1 << 26  # bytes: a command line and an environment are far smaller


class Dropped(Exception):
    """A connection that is not a job to run: closed, silent, foreign or malformed."""


def _read(conn: socket.socket, n: int, deadline: float) -> bytes:
    data = b""
    while len(data) < n:
        conn.settimeout(max(deadline - time.monotonic(), 1e-3))  # the whole request within its time, however sent
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise Dropped("closed mid-request")
        data += chunk
    return data


def peer_uid(conn: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket (as the kernel saw it connect)."""
    _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid


def receive(conn: socket.socket) -> tuple[dict | None, list[int]]:
    """One request and the client's (stdout, stderr); None for a stop request. Raises `Dropped` for a
    connection of another user, one that has not sent its request `REQUEST_SECONDS` after connecting, one of over
    `MAX_REQUEST` bytes,
    or a request that is not an object naming a stage of this project; the fds it sent are closed then."""
    if peer_uid(conn) != os.getuid():
        raise Dropped("another user's connection")
    deadline = time.monotonic() + REQUEST_SECONDS
    conn.settimeout(REQUEST_SECONDS)
    fds: list[int] = []
    try:
        head, fds, _, _ = socket.recv_fds(conn, HEADER, 2)
        if not head:
            raise Dropped("closed before its request")
        size = int(head + _read(conn, HEADER - len(head), deadline))
        if not 0 <= size <= MAX_REQUEST:
            raise Dropped(f"a request of {size} bytes")
        request = json.loads(_read(conn, size, deadline)) if size else None
        module = request.get("module") if isinstance(request, dict) else None
        if request is not None and not is_stage_module(str(module)):
            raise Dropped(f"not a stage of this project: {module!r}")
        if request is not None and len(fds) != 2:
            raise Dropped("no stdout and stderr sent")
    except (OSError, ValueError, Dropped) as e:  # OSError: socket.timeout included
        for fd in fds:
            os.close(fd)
        raise e if isinstance(e, Dropped) else Dropped(str(e) or type(e).__name__) from None
    conn.settimeout(None)
    return request, fds


def _watch(conn: socket.socket, done: threading.Event, retire: Callable[[], None]) -> None:
    """The client going away mid-job is a Ctrl-C for the job; the server takes no more jobs and exits."""
    try:
        gone = not conn.recv(1)
    except OSError:  # the server closed it (the job is over), or the client reset it
        gone = not done.is_set()
    if gone and not done.is_set():
        retire()  # the next stage starts a fresh server at once, whatever this one still has to clean up
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1), os.dup2(null, 2)
        _thread.interrupt_main()
        if not done.wait(60):
            os._exit(1)


def _send(conn: socket.socket, reply: dict) -> bool:
    """Whether `reply` reached the client (one that left gets nothing, and the server goes on)."""
    try:
        conn.sendall(json.dumps(reply).encode() + b"\n")
        return True
    except OSError:
        return False


def serve(path: Path, idle_seconds: float) -> None:
    """Take jobs at `path` one at a time until `idle_seconds` pass without one."""
    # interrupt_main() needs Python's handler, which a process started with SIGINT ignored never gets
    # (a background job of a non-interactive shell): without it a dead client's job would run on
    signal.signal(signal.SIGINT, signal.default_int_handler)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    listener.bind(str(tmp))
    listener.listen(64)
    os.replace(tmp, path)  # clients see a socket only once it listens
    mine, jobs = os.stat(path).st_ino, 0
    reset = process_defaults()  # imports torch while the first client's request is on its way

    def retire() -> None:
        if path.exists() and os.stat(path).st_ino == mine:
            path.unlink()
        listener.close()

    listener.settimeout(idle_seconds)
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # idle for idle_seconds, or retired
                return
            with conn:
                try:
                    request, fds = receive(conn)
                except Dropped as e:
                    print(f"dropped a connection: {e}", file=sys.stderr, flush=True)
                    continue
                if request is None:
                    return
                if not _send(conn, {"pid": os.getpid(), "job": jobs + 1}):  # it left while queued: not a job
                    for fd in fds:
                        os.close(fd)
                    continue
                jobs += 1
                done = threading.Event()
                threading.Thread(target=_watch, args=(conn, done, retire), daemon=True).start()
                try:
                    rc = run_in_process(request, fds[0], fds[1], reset)
                finally:
                    done.set()
                    for fd in fds:
                        os.close(fd)
                if rc == 130 or not _send(conn, {"rc": rc}):  # interrupted, or its client left: a fresh server next
                    return
    finally:
        retire()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), float(sys.argv[2]))

"""A warm process for per-video stages: imports and model builds are paid once, not once per stage.

DVC runs every (video, backbone) features stage as its own `python -m stages.features` process, and
most of such a process is start-up: importing torch, building the model. With
`runtime.warm_seconds > 0` the stage's process is a thin client. It hands its command line, working
directory, environment, stdout and stderr over a Unix socket to a server of the same code and
environment (started on first use, gone after `warm_seconds` without a job), which runs the very same
command in-process and keeps what it imported and built. Same code, arguments and seeds: same outputs.

A server is keyed on the Python, the project's code, the installed packages and the environment, so
an edit or a reinstall starts a new one. If the client dies (Ctrl-C, killed by DVC), the server's job
is interrupted like a Ctrl-C in the stage itself (outputs are written to temp paths and renamed, so
nothing half-written survives) and the server exits; the next stage starts a fresh one.
"""
from __future__ import annotations

import _thread
import fcntl
import hashlib
import json
import os
import runpy
import signal
import site
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import BouldersegError

ROOT = Path(__file__).resolve().parents[1]
IN_SERVER = "BOULDERSEG_WARM_SERVER"  # set in the server: its stages run here, never hand off again
_VOLATILE = {"DVC_STAGE", "PYTEST_CURRENT_TEST", "OLDPWD", "PWD", "_", "COLUMNS", "LINES"}  # change per stage
_HEADER = 16  # bytes of the request's length, sent with the client's stdout and stderr


def socket_dir() -> Path:
    """This user's private folder of server sockets and logs."""
    d = Path(tempfile.gettempdir()) / f"boulderseg-warm-{os.getuid()}"
    d.mkdir(mode=0o700, exist_ok=True)
    st = d.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise BouldersegError(f"{d}: must be private to you (mode 700, yours) to hold warm-server sockets. "
                              "Remove it, or set runtime.warm_seconds: 0 to run every stage in its own process.")
    return d


def server_key(root: Path, env: dict[str, str]) -> str:
    """What a server's results depend on besides its job: Python, project code, installed packages, environment."""
    h = hashlib.sha256(f"{sys.executable}\n{sys.version}\n{root}\n".encode())
    for f in sorted(p for d in ("pipeline", "stages") for p in (root / d).rglob("*.py")):
        h.update(f"{f.relative_to(root)}\n".encode() + f.read_bytes())
    for d in site.getsitepackages():  # a directory's mtime changes when a package is installed or removed
        h.update(f"{d}:{os.stat(d).st_mtime_ns if os.path.isdir(d) else None}\n".encode())
    h.update("".join(f"{k}={v}\n" for k, v in sorted(env.items()) if k not in _VOLATILE).encode())
    return h.hexdigest()[:20]


def handoff(idle_seconds: float) -> None:
    """Run this `python -m stages.NAME` command in a warm server and exit with its exit code.

    Returns (and the caller runs the stage itself) when warm servers are off, when this is a server,
    or when the command was not started as `python -m stages.NAME`.
    """
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if idle_seconds <= 0 or os.environ.get(IN_SERVER) or spec is None or not spec.name.startswith("stages."):
        return
    path = socket_dir() / f"{server_key(ROOT, dict(os.environ))}.sock"
    request = json.dumps({"module": spec.name, "argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)})
    for _ in range(3):  # a server may exit idle just as we connect: then start another
        with _connect_or_start(path, idle_seconds) as conn:
            body = request.encode()
            sys.stdout.flush(), sys.stderr.flush()
            socket.send_fds(conn, [f"{len(body):<{_HEADER}}".encode()], [1, 2])
            conn.sendall(body)
            replies = conn.makefile("rb")
            started = replies.readline()
            if not started:
                continue
            ticket = json.loads(started)
            print(f"{spec.name}: run by warm process {ticket['pid']} (its job {ticket['job']})", file=sys.stderr)
            done = replies.readline()
            if not done:
                raise BouldersegError(f"the warm server (pid {ticket['pid']}) died running this "
                                      f"stage; its log: {path.with_suffix('.log')}. Rerun it; with "
                                      "runtime.warm_seconds: 0 every stage runs in its own process.")
            raise SystemExit(json.loads(done)["rc"])
    raise BouldersegError(f"no warm server took this stage at {path}; set runtime.warm_seconds: 0 to run "
                          "every stage in its own process.")


def _connect(path: Path) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        raise
    return conn


def _connect_or_start(path: Path, idle_seconds: float) -> socket.socket:
    """A connection to the server at `path`, starting one if none answers (one starter at a time)."""
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            path.unlink(missing_ok=True)  # a server that died without cleaning up
        log = path.with_suffix(".log")
        with open(log, "ab") as out:
            server = subprocess.Popen([sys.executable, "-m", "pipeline.warm", str(path), str(idle_seconds)],
                                      cwd=ROOT, env=os.environ | {IN_SERVER: "1"}, stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                return _connect(path)
            except (FileNotFoundError, ConnectionRefusedError):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise BouldersegError(f"the warm server did not start (see {log}); set "
                                          "runtime.warm_seconds: 0 to run every stage in its own process.") from None
                time.sleep(0.02)


def stop_all() -> int:
    """Ask every idle server of this user to exit; the number asked."""
    asked = 0
    for path in socket_dir().glob("*.sock"):
        try:
            with _connect(path) as conn:
                socket.send_fds(conn, [f"{0:<{_HEADER}}".encode()], [])
                asked += 1
        except OSError:
            path.unlink(missing_ok=True)
    return asked


def _receive(conn: socket.socket) -> tuple[dict | None, list[int]]:
    """One request and the client's (stdout, stderr); None for a stop request."""
    head, fds, _, _ = socket.recv_fds(conn, _HEADER, 2)
    while len(head) < _HEADER:
        head += conn.recv(_HEADER - len(head))
    size, body = int(head), b""
    while len(body) < size:
        body += conn.recv(size - len(body))
    return (json.loads(body) if size else None), fds


def process_defaults() -> Callable[[], None]:
    """What a fresh process starts with that a job may change (ultralytics sets torch to one thread on a
    2-core machine): a function that puts it back, so every job starts as in a process of its own."""
    import cv2
    import torch

    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    deterministic = torch.are_deterministic_algorithms_enabled()

    def reset() -> None:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)
        torch.use_deterministic_algorithms(deterministic)

    return reset


def run_module(request: dict) -> int:
    """Run a stage module as `python -m` would, with the client's argv, cwd and environment: its exit code."""
    os.environ.clear()
    os.environ.update(request["env"], **{IN_SERVER: "1"})
    os.chdir(request["cwd"])
    sys.argv = [request["module"], *request["argv"]]
    sys.modules.pop(request["module"], None)  # runpy warns when an earlier job left it imported
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BaseException:  # noqa: BLE001 - printed to the client, as the stage's own process would
        traceback.print_exc()
        return 1
    return 0


def _watch(conn: socket.socket, done: threading.Event, retire: Callable[[], None]) -> None:
    """The client going away mid-job is a Ctrl-C for the job; the server takes no more jobs and exits."""
    try:
        gone = not conn.recv(1)
    except OSError:  # the server closed it: the job is over
        return
    if gone and not done.is_set():
        retire()  # the next stage starts a fresh server at once, whatever this one still has to clean up
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1), os.dup2(null, 2)
        _thread.interrupt_main()
        if not done.wait(60):
            os._exit(1)


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
                conn.settimeout(None)
                try:
                    request, fds = _receive(conn)
                except (OSError, ValueError):  # a client that died before it sent its job
                    continue
                if request is None:
                    return
                jobs += 1
                conn.sendall(json.dumps({"pid": os.getpid(), "job": jobs}).encode() + b"\n")
                done = threading.Event()
                threading.Thread(target=_watch, args=(conn, done, retire), daemon=True).start()
                reset()
                saved = [os.dup(1), os.dup(2)]
                os.dup2(fds[0], 1), os.dup2(fds[1], 2)
                try:
                    rc = run_module(request)
                except KeyboardInterrupt:
                    rc = 130
                finally:
                    sys.stdout.flush(), sys.stderr.flush()
                    done.set()
                    for fd, was in zip((1, 2), saved):
                        os.dup2(was, fd)
                    for fd in (*fds, *saved):
                        os.close(fd)
                if rc == 130:  # interrupted: a fresh server for the next job
                    return
                try:
                    conn.sendall(json.dumps({"rc": rc}).encode() + b"\n")
                except OSError:  # the client is gone
                    return
    finally:
        retire()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), float(sys.argv[2]))

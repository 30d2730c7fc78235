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

import contextlib
import fcntl
import hashlib
import json
import os
import site
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.core.errors import BouldersegError
from pipeline.warm.runner import IN_SERVER, ROOT, code_key

_VOLATILE = {"DVC_STAGE", "PYTEST_CURRENT_TEST", "OLDPWD", "PWD", "_", "COLUMNS", "LINES"}  # change per stage
HEADER = 16  # bytes of the request's length, sent with the client's stdout and stderr
_GONE = (ConnectionResetError, BrokenPipeError)  # a server that exited idle just as we connected


def socket_dir() -> Path:
    """This user's private folder of server sockets and logs."""
    d = Path(tempfile.gettempdir()) / f"boulderseg-warm-{os.getuid()}"
    with contextlib.suppress(FileExistsError):  # whatever is there is checked, not followed
        d.mkdir(mode=0o700)
    st = d.lstat()  # a symlink someone else planted is not our folder, wherever it points
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise BouldersegError(f"{d}: must be private to you (mode 700, yours) to hold warm-server sockets. "
                              "Remove it, or set runtime.warm_seconds: 0 to run every stage in its own process.")
    return d


def server_key(root: Path, env: dict[str, str]) -> str:
    """What a server's results depend on besides its job: Python, project code, installed packages, environment."""
    h = hashlib.sha256(f"{sys.executable}\n{sys.version}\n{root}\n{code_key(root)}\n".encode())
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
            replies = conn.makefile("rb")
            try:
                socket.send_fds(conn, [f"{len(body):<{HEADER}}".encode()], [1, 2])
                conn.sendall(body)
                started = replies.readline()
            except _GONE:
                started = b""
            if not started:
                continue
            ticket = json.loads(started)
            print(f"{spec.name}: run by warm process {ticket['pid']} (its job {ticket['job']})", file=sys.stderr)
            try:
                done = replies.readline()
            except _GONE:
                done = b""
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
            server = subprocess.Popen([sys.executable, "-m", "pipeline.warm.server", str(path), str(idle_seconds)],
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
                socket.send_fds(conn, [f"{0:<{HEADER}}".encode()], [])
                asked += 1
        except OSError:
            path.unlink(missing_ok=True)
    return asked



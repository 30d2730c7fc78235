"""A warm server goes on serving past clients that stall, die mid-request, leave before their ticket, belong to
another user or ask for something that is not a stage; a client whose server closes with it queued starts a
fresh one; the socket folder is never a planted symlink (issue 25, items 10-12). Every fault is staged for real:
real sockets, processes, signals and users, nothing mocked."""
from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import psutil
import pytest

from conftest import REPO
from pipeline.core.errors import BouldersegError
from pipeline.warm import client as warm
from test_warm import cpu_seconds, features, project, server_of, stage, stage_env, until  # noqa: F401 (a fixture)

SERVER = "pipeline.warm.server"  # run as `python -m SERVER SOCKET IDLE_SECONDS`
NOBODY = 65534


def socket_of(pid: int) -> Path:
    """The socket a warm server listens on (its command line is `python -m SERVER SOCKET IDLE_SECONDS`)."""
    return Path(psutil.Process(pid).cmdline()[-2])


def send(conn: socket.socket, body: bytes, fds: Sequence[int], size: int | None = None) -> None:
    """A request as the client sends it: its size in HEADER bytes with (stdout, stderr), then the body."""
    socket.send_fds(conn, [f"{len(body) if size is None else size:<{warm.HEADER}}".encode()], fds)
    conn.sendall(body)


def job(project: Path, out: str = "out.zarr", *, module: str = "stages.features", argv: list[str] | None = None,
        cwd: Path | None = None) -> bytes:
    """A request in the shape `client.handoff` sends; by default the features of `project`'s frames into `out`."""
    argv = ["x3d_xs", "frames", out, "--family", "pytorchvideo", "--params", "params.yaml"] if argv is None else argv
    return json.dumps({"module": module, "argv": argv, "cwd": str(cwd or project), "env": stage_env(project)}).encode()


def exchange(conn: socket.socket, body: bytes | None, fds: Sequence[int] = (), size: int | None = None,
             within: float = 60) -> list[dict]:
    """Send a request on `conn` (None: none, a silent client) and read what the server says as the client reads it:
    [] when it dropped the connection, else its ticket and (unless the server died) the job's exit code."""
    conn.settimeout(within)
    said: list[dict] = []
    try:
        if body is not None:
            send(conn, body, fds, size)
        with conn.makefile("rb") as lines:
            while not said or "rc" not in said[-1]:
                line = lines.readline()
                if not line:
                    break
                said.append(json.loads(line))
    except (BrokenPipeError, ConnectionResetError):  # dropped before it read what was sent
        pass
    except TimeoutError:
        raise AssertionError(f"the server neither answered nor closed the connection in {within} s") from None
    return said


def ask(path: Path, body: bytes, logs: Path, size: int | None = None) -> list[dict]:
    """Our request at `path`, the job's stdout and stderr in `logs`.out and `logs`.err: the server's replies."""
    with (socket.socket(socket.AF_UNIX) as conn, open(logs.with_suffix(".out"), "wb") as out,
          open(logs.with_suffix(".err"), "wb") as err):
        conn.connect(str(path))
        return exchange(conn, body, [out.fileno(), err.fileno()], size)


def as_user(uid: int, path: Path, body: bytes) -> list[dict]:
    """The server's replies to `body` sent from a process of user `uid`: a fork that drops root before it connects
    (the project's Python, under /root, is not one another user may run)."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            null = os.open(os.devnull, os.O_WRONLY)
            with socket.socket(socket.AF_UNIX) as conn:
                conn.connect(str(path))
                os.write(w, json.dumps(exchange(conn, body, [null, null])).encode())
            code = 0
        except BaseException:  # noqa: BLE001 - shown in the test's output; the parent fails on the exit code
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        got = f.read()
    assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0, f"user {uid}'s process failed (its traceback above)"
    return json.loads(got)


@pytest.fixture(autouse=True)
def servers(monkeypatch, tmp_path_factory):
    """Stage servers on sockets of this test's own, out of reach of any other session's `stop_all` (and ours of
    theirs), terminated afterwards (a stop request would wait behind a stuck client): a test records their pids."""
    # pytest puts its temp base in the temp folder of the first test that asks for one: fixed now, it cannot fall
    # in the folder below, which goes with this test
    tmp_path_factory.getbasetemp()
    tmp = tempfile.mkdtemp(prefix="warm-faults-", dir="/tmp")  # short: a socket's path has at most 107 bytes
    monkeypatch.setenv("TMPDIR", tmp)
    monkeypatch.setattr(tempfile, "tempdir", tmp)
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    shutil.rmtree(tmp)


@pytest.fixture
def own_server(tmp_path):
    """A server we start ourselves on a socket any user can reach: (its pid, its socket, its stderr)."""
    folder = Path(tempfile.mkdtemp(prefix="warm-faults-", dir="/tmp"))
    folder.chmod(0o755)
    path, log = folder / "server.sock", tmp_path / "server.log"
    with open(log, "wb") as f:
        server = subprocess.Popen([sys.executable, "-m", SERVER, str(path), "30"], cwd=REPO, stdin=subprocess.DEVNULL,
                                  stdout=f, stderr=subprocess.STDOUT,
                                  env=os.environ | {"PYTHONPATH": str(REPO), warm.IN_SERVER: "1"})
    try:
        assert until(path.exists, within=60), f"the server did not start: {log.read_text()}"
        yield server.pid, path, log
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(folder)


def run_features(project: Path, out: str, servers: list[int]) -> tuple[int, int]:
    """Run a features stage through its warm server (recorded in `servers`): (the server's pid, the job number)."""
    r = features(project, out)
    assert r.returncode == 0, r.stderr
    pid, n = server_of(r.stderr)
    servers.append(pid)
    return pid, n


# item 10: the old server took an empty read for progress and spun on a dead client's connection forever
PART_OF_A_HEADER = ("import socket, sys, time; c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); "
                    "c.sendall(b'12'); print('sent', flush=True); time.sleep(60)")


def test_a_client_killed_mid_request_is_dropped_and_the_server_neither_spins_nor_stops_serving(project, servers):
    pid, n = run_features(project, "a.zarr", servers)
    client = subprocess.Popen([sys.executable, "-c", PART_OF_A_HEADER, str(socket_of(pid))],
                              stdout=subprocess.PIPE, text=True)
    assert client.stdout.readline() == "sent\n"  # 2 of its 16 header bytes are on their way
    client.kill()
    client.wait()
    before = cpu_seconds(pid)
    time.sleep(2)  # a measurement: what the server burns while it has nothing to do
    used = cpu_seconds(pid) - before
    assert used < 0.3, f"the server spins on the dead client's connection: {used:.2f} CPU seconds in 2 s"
    assert run_features(project, "b.zarr", servers) == (pid, n + 1), "the next stage was not the server's next job"


def test_a_silent_client_is_dropped_within_a_second_and_the_next_stage_runs(project, servers):
    pid, n = run_features(project, "a.zarr", servers)
    with socket.socket(socket.AF_UNIX) as silent:  # connects, sends nothing, stays
        silent.connect(str(socket_of(pid)))
        start = time.monotonic()
        assert exchange(silent, None, within=10) == []
        waited = time.monotonic() - start
    assert waited < 2, f"a silent client held the server {waited:.1f} s"
    assert run_features(project, "b.zarr", servers) == (pid, n + 1), "the next stage was not the server's next job"


# item 11: a peer gone at the other end of the socket is ECONNRESET or EPIPE, never a traceback
def test_a_client_that_leaves_before_its_ticket_is_skipped_and_the_server_goes_on(project, servers):
    busy = stage(project, "features", "x3d_xs", "frames", "a.zarr", "--family", "pytorchvideo", wait=False)
    pid, n = server_of(busy.stderr.readline())
    servers.append(pid)
    with socket.socket(socket.AF_UNIX) as conn, open(os.devnull, "wb") as null:  # a whole request, then it leaves
        conn.connect(str(socket_of(pid)))
        send(conn, job(project, "left.zarr"), [null.fileno()] * 2)
    assert busy.poll() is None, "the server was idle: the request was not queued behind a job"
    _, err = busy.communicate(timeout=300)
    assert busy.returncode == 0, err
    # the ticket it could not hand out is no job
    assert run_features(project, "b.zarr", servers) == (pid, n + 1), "the next stage was not the server's next job"
    assert not (project / "left.zarr").exists()


def test_a_server_that_closes_with_the_client_queued_is_replaced_and_the_stage_runs(project, servers):
    path = warm.socket_dir() / f"{warm.server_key(REPO, stage_env(project))}.sock"  # the stage's own server's
    path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX) as listener:  # a server about to exit idle: it never accepts
        listener.bind(str(path))
        listener.listen(1)
        client = stage(project, "features", "x3d_xs", "frames", "a.zarr", "--family", "pytorchvideo", wait=False)
        ready, _, _ = select.select([listener], [], [], 60)
        assert ready, f"the stage did not connect to {path}"
        # its request sent, the client waits for a ticket: its main thread sleeps in its read
        assert until(lambda: psutil.Process(client.pid).status() == psutil.STATUS_SLEEPING, within=10)
        path.unlink()
    _, err = client.communicate(timeout=300)  # the listener closed: the queued connection was reset
    assert client.returncode == 0 and "Traceback" not in err, err
    servers.append(server_of(err)[0])
    assert (project / "a.zarr").is_dir()


# item 12: who may hand the server a job, and what job
@pytest.mark.parametrize("planted", ["a symlink to a private folder of ours", "a dangling symlink", "a file"])
def test_a_socket_folder_that_is_not_a_real_private_folder_of_ours_is_refused(tmp_path, monkeypatch, planted):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    d, ours = tmp_path / f"boulderseg-warm-{os.getuid()}", tmp_path / "elsewhere"
    ours.mkdir(mode=0o700)
    if planted == "a file":
        d.write_text("")
    else:
        d.symlink_to(ours if "private" in planted else tmp_path / "nowhere")
    with pytest.raises(BouldersegError, match="must be private to you"):
        warm.socket_dir()
    assert not any(ours.iterdir())
    d.unlink()
    assert warm.socket_dir() == d and stat.S_IMODE(d.lstat().st_mode) == 0o700 and d.is_dir() and not d.is_symlink()


def test_another_users_connection_is_dropped_and_runs_nothing(project, own_server, tmp_path):
    assert os.getuid() == 0, "this test connects as another user (uid 65534) and must run as root, as CI does"
    pid, path, log = own_server
    path.chmod(0o777)  # only the server's own check stands between that user and a job
    theirs = as_user(NOBODY, path, job(project, "theirs.zarr"))
    assert theirs == [], f"another user's request was answered: {theirs}"
    assert "dropped a connection: another user's connection" in log.read_text()
    assert ask(path, job(project), tmp_path / "mine") == [{"pid": pid, "job": 1}, {"rc": 0}]
    assert (project / "out.zarr").is_dir() and not (project / "theirs.zarr").exists()


def test_a_request_for_anything_but_a_stage_of_this_project_is_dropped_and_runs_nothing(project, own_server, tmp_path):
    pid, path, log = own_server
    not_stages = {"os": [], "stages.nonexistent": [], "stages.__init__": [], "pipeline.cli": ["--help"]}
    for module, argv in not_stages.items():
        assert ask(path, job(project, module=module, argv=argv), tmp_path / "job") == [], f"{module} was run"
        assert (tmp_path / "job.out").read_bytes() == (tmp_path / "job.err").read_bytes() == b"", module
    assert ask(path, b"[1]", tmp_path / "job") == [], "a request that is no object was run"
    assert ask(path, b"", tmp_path / "job", size=10**15) == [], "a request of 10**15 bytes was awaited"
    assert log.read_text().count("dropped a connection") == len(not_stages) + 2, log.read_text()
    assert ask(path, job(project), tmp_path / "mine") == [{"pid": pid, "job": 1}, {"rc": 0}]
    assert (project / "out.zarr").is_dir()


def test_a_job_whose_working_directory_is_gone_fails_and_the_server_goes_on(project, own_server, tmp_path):
    pid, path, _ = own_server
    removed = tmp_path / "removed"  # a stage's folder, removed while its request waited in the queue
    assert ask(path, job(project, cwd=removed), tmp_path / "gone") == [{"pid": pid, "job": 1}, {"rc": 1}]
    assert str(removed) in (tmp_path / "gone.err").read_text()
    assert ask(path, job(project), tmp_path / "mine") == [{"pid": pid, "job": 2}, {"rc": 0}]


def test_a_server_whose_folder_was_removed_still_runs_the_next_job(tmp_path):
    """A warm process outlives the project folder it ran in (deleted and cloned again at the same path within
    warm_seconds): its next job must run, not kill the process on os.getcwd()."""
    script = f"""import os, sys
from pipeline.warm.runner import run_in_process
gone = {str(tmp_path / "gone")!r}
os.mkdir(gone)
os.chdir(gone)
os.rmdir(gone)
request = {{"module": "stages.frames", "argv": ["--help"], "cwd": {str(REPO)!r}, "env": dict(os.environ)}}
rc = run_in_process(request, 1, 2, lambda: None)
print("rc", rc, os.getcwd())"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and "rc 0 /" in out.stdout, out.stderr

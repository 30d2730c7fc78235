"""Toy DVC projects of shell commands and real Dask schedulers and workers started as processes, for the cluster
tests: fast, and every fault staged on the real thing."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from e2e import ENV, sh

DASK = str(Path(sys.executable).parent / "dask")


def toy(root: Path, stages: dict, files: dict[str, str] | None = None) -> Path:
    """A git + DVC project at `root` with `stages` as its dvc.yaml and `files` written into it."""
    root.mkdir(parents=True)
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    sh("git", "init", "-q", cwd=root)
    sh("dvc", "init", "-q", cwd=root)
    return root


def twin(root: Path, where: Path) -> Path:
    """A copy of project `root` at `where` (for a serial `dvc repro` to compare with)."""
    subprocess.run(["cp", "-a", str(root), str(where)], check=True)
    return where


def lock(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.lock").read_text()) if (root / "dvc.lock").exists() else {}


def status_is_clean(root: Path) -> bool:
    return subprocess.run(["dvc", "status", "-q"], cwd=root, env=ENV).returncode == 0


def certificate(where: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key, as the README's recipe makes them: (cert.pem, key.pem)."""
    where.mkdir(parents=True, exist_ok=True)
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=boulderseg", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def tls_env(cert: Path, key: Path) -> dict[str, str]:
    """The README's environment for a driver that talks TLS to a scheduler."""
    return {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True", "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(cert),
            "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(cert), "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(key)}


@contextlib.contextmanager
def scheduler(tmp: Path, *workers: dict, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """A `dask scheduler` on loopback and one `dask worker` process per dict in `workers` (keys: name, nthreads,
    env, cwd, resources), all on TLS with `tls` (cert, key) if given; yields the scheduler's address, once every
    worker has joined."""
    info = tmp / f"scheduler-{time.monotonic_ns()}.json"
    secure = ["--protocol", "tls", "--tls-ca-file", str(tls[0]), "--tls-cert", str(tls[0]),
              "--tls-key", str(tls[1])] if tls else []
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(info), *secure], env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        _wait(lambda: info.exists() and info.stat().st_size, "the scheduler to start")
        address = json.loads(info.read_text())["address"]
        for w in workers:
            argv = [DASK, "worker", address, "--nthreads", str(w.get("nthreads", 1)), "--name", w["name"],
                    "--no-dashboard", "--no-nanny", *secure]
            if w.get("resources"):
                argv += ["--resources", w["resources"]]
            procs.append(subprocess.Popen(argv, env=ENV | w.get("env", {}), cwd=w.get("cwd"),
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True))
        from distributed import Client
        from distributed.security import Security

        security = Security(tls_ca_file=str(tls[0]), tls_client_cert=str(tls[0]), tls_client_key=str(tls[1]),
                            require_encryption=True) if tls else None
        with Client(address, timeout=30, security=security) as client:
            client.wait_for_workers(len(workers), timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _wait(ready, what: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def worker_processes(driver_pid: int) -> list:
    """The live worker processes of a local cluster started by the driver `driver_pid` (killed ones left out)."""
    import psutil

    found = []
    for child in psutil.Process(driver_pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # gone meanwhile
            continue
    return found

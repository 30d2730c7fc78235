"""The README's quickstart as a newcomer runs it: a clone of main, the README's own install command, then its
main job with no network at all. It fails, never skips, where this machine lacks what it needs.

The install runs in a new virtual environment layered over the one running the tests (a `.pth` line), so pip
resolves every requirement from the clone's own pyproject.toml and installs the clone, without downloading the
5 GB of torch and CUDA wheels a second time: CI's own `.ci/run` is the install from nothing.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from e2e import ENV, REPO, sh, stages_run
from pipeline.core import profiles
from pipeline.features import store
from pipeline.models.blazepose import WEIGHTS

README = (REPO / "README.md").read_text()
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


def quickstart() -> tuple[str, str]:
    """(install, main job): the first line of the README's quickstart block, `INSTALL && MAIN  # comment`."""
    block = re.search(r"^## Quickstart\n.*?^```bash\n(.*?)^```", README, re.S | re.M)
    assert block, "README.md has no ```bash block under '## Quickstart'"
    first = block.group(1).splitlines()[0].split("#", 1)[0]
    install, main = (part.strip() for part in first.split("&&"))
    return install, main


def offline_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    ok = unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0
    assert ok, "`unshare -rn` is needed to run the main job with the network off (util-linux; run as root in CI)"
    return [unshare, "-rn"]


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory) -> tuple[Path, str]:
    install, main = quickstart()
    root = tmp_path_factory.mktemp("newcomer")
    clone = root / "boulderseg"
    sh("git", "clone", "-q", str(REPO), str(clone), cwd=root)
    assert not (clone / "weights").exists() and not (clone / "dvc.lock").exists()
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_tested_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = ENV | {"PATH": f"{venv / 'bin'}{os.pathsep}{ENV['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("BOULDERSEG_OFFLINE", None)  # a newcomer sets nothing: the network is off, not a switch
    done = subprocess.run(install, shell=True, cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{install} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    located = subprocess.run([venv / "bin" / "python", "-c", "import pipeline; print(pipeline.__file__)"],
                             cwd=root, env=env, capture_output=True, text=True, check=True).stdout
    assert located.startswith(str(clone)), located  # the clone is what got installed
    run = subprocess.run([*offline_prefix(), "sh", "-c", main], cwd=clone, env=env, capture_output=True, text=True,
                         timeout=1800)
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"{main} failed with the network off:\n{output[-6000:]}"
    return clone, output


def test_the_readme_quickstart_is_install_then_dvc_repro():
    install, main = quickstart()
    assert install.startswith("pip install -e .") and main == "dvc repro"


@pytest.mark.slow
def test_a_newcomer_runs_every_stage_with_real_weights_and_no_network(newcomer):
    root, output = newcomer
    expected = set(sh("dvc", "stage", "list", "--name-only", cwd=root).split())
    assert expected and stages_run(output) == expected
    assert (root / "reports" / "leaderboard.md").is_file()
    assert "Data and pipelines are up to date." in sh("dvc", "status", cwd=root)
    assert "WARNING" not in output and "warning:" not in output.lower(), output[-3000:]
    assert profiles.current(root / "params.yaml") == "default"
    params = yaml.safe_load((root / "params.yaml").read_text())
    for video in params["videos"]:
        persons = pq.read_table(root / "data" / "persons" / f"{video}.parquet")
        assert persons.schema.metadata[b"detector"] == b"blazepose"
        assert all(f.sha256 in persons.schema.metadata[b"weights"].decode() for f in WEIGHTS.files)
        assert 0 < np.mean(persons["person"].to_numpy()) < 1  # a real filter: it drops the empty gaps
        weights = store.read(root / "features" / "efficientnet_lite0" / f"{video}.zarr").attrs["weights"]
        assert weights["pretrained"] is True and weights["sha256"] == LITE0_SHA256

"""What the end-to-end tests share: the README's offline run of the sample in a temp project, and its copies."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from pipeline.core import profiles

REPO = Path(__file__).resolve().parents[1]
BOULDERSEG = str(Path(sys.executable).parent / "boulderseg")

ENV = os.environ | {
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    "DVC_NO_ANALYTICS": "1",
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
}
# the smoke profile (random x3d_xs, the BlazePose person filter), as `dvc exp run -S` overrides
OFFLINE_RUN = ["dvc", "exp", "run", *(arg for key, value in profiles.get("smoke").settings.items()
                                      for arg in ("-S", f"{key}={json.dumps(value)}"))]
PER_VIDEO = ("labels", "frames", "persons", "features-pytorchvideo")
SHIPPED_HEADS = yaml.safe_load((REPO / "params.yaml").read_text())["train"]["heads"]
HEADS = ("linear", "lstm", "mstcn")  # the sample project trains these; a test adds the others (CI time)
SMALL_HEADS = ("linear", "lstm")  # the two-video project's


def rows(heads=HEADS, backbone: str = "x3d_xs", family: str = "pytorchvideo") -> set[str]:
    """The train stages of one backbone's leaderboard rows."""
    return {f"train-{family}@{backbone}-{head}" for head in heads}


def predictions(root: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f) for f in sorted((root / "reports" / "predictions").glob("*/*.parquet"))],
                     ignore_index=True)


def prediction_bytes(root: Path) -> dict[str, bytes]:
    return {str(f): f.read_bytes() for f in sorted((root / "reports" / "predictions").glob("*/*.parquet"))}


def sh(*cmd: str, cwd: Path) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def stages_done(output: str) -> set[str]:
    """The stages `boulderseg repro` ran and recorded."""
    return {line.removeprefix("done: ").split(" (")[0] for line in output.splitlines() if line.startswith("done: ")}


def each_video(stage: str, videos, backbone: str = "x3d_xs") -> set[str]:
    """Stage names of every video; a per-family features stage is named after the video and the backbone."""
    return {f"{stage}@{v}-{backbone}" if stage.startswith("features-") else f"{stage}@{v}" for v in videos}


def set_params(root: Path, edit) -> None:
    p = yaml.safe_load((root / "params.yaml").read_text())
    edit(p)
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def committed_copy(root: Path, edit=None) -> Path:
    """The repository's files in `root`, with `edit` applied to params.yaml, committed in a new git repository."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        if (REPO / f).is_file():
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            (root / f).write_bytes((REPO / f).read_bytes())
    if edit:
        set_params(root, edit)
    sh("git", "init", "-q", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "sample", cwd=root)
    return root


def clean_run(root: Path, edit=None) -> tuple[Path, str]:
    """`committed_copy`, then the offline run (`OFFLINE_RUN`), committed."""
    committed_copy(root, edit)
    output = sh(*OFFLINE_RUN, cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "offline run", cwd=root)
    return root, output


def copy_of(run: tuple[Path, str], tmp_path: Path) -> Path:
    dst = tmp_path / "project"
    subprocess.run(["cp", "-a", str(run[0]), str(dst)], check=True)
    return dst

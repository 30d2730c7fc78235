"""Wall time and peak memory of each stage of the smoke profile's `dvc repro` of the sample, in a temp copy of the repo.

    python benchmarks/stage_times.py [--warm-seconds S] [--climbs N]

Runs `dvc repro <stage>` for each stage group in DAG order, so each line is that stage's own
time for all videos, DVC's bookkeeping included, and the peak summed RSS of its process tree
(benchmarks/kit.py). `--warm-seconds 0` runs every persons and features stage in its own process
(runtime.warm_seconds; default: as params.yaml ships; use 0 for memory figures, since a warm
process outlives the stage that started it). `--climbs N` generates a sample of N climbs
(2N videos) in place of the shipped one.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from kit import copy_repo, measured

from pipeline.core import profiles


def stages(params: dict) -> list[str]:
    """Stage groups in DAG order: one features group per family that lists a backbone."""
    families = [family for family, names in params["features"]["backbones"].items() if names]
    return ["labels", "stats", "frames", "persons", *[f"features-{f}" for f in families], "folds",
            *[f"train-{f}" for f in families], "evaluate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-seconds", type=float, default=None)
    parser.add_argument("--climbs", type=int, default=None)
    args = parser.parse_args()
    warm_seconds = args.warm_seconds
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                        "DVC_NO_ANALYTICS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_repo(Path(tmp) / "repo")
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        params = root / "params.yaml"
        p = yaml.safe_load(params.read_text())
        if args.climbs:
            shutil.rmtree(root / "data/raw")
            table = subprocess.run([str(Path(sys.executable).parent / "boulderseg"), "sample", "data/raw", "--climbs",
                                    str(args.climbs)], cwd=root, env=env, capture_output=True, text=True,
                                   check=True).stdout
            p["videos"] = yaml.safe_load(table)["videos"]
        if warm_seconds is not None:
            p["runtime"]["warm_seconds"] = warm_seconds
        params.write_text(yaml.safe_dump(p, sort_keys=False))
        profiles.apply(profiles.get("smoke"), params)  # random x3d_xs, the figures below
        p = yaml.safe_load(params.read_text())
        total, top = 0.0, 0
        print(f"{len(p['videos'])} videos; stage, wall time, peak RSS of `dvc repro STAGE` and its processes", flush=True)
        for stage in stages(p):
            dt, peak = measured(["dvc", "repro", stage], cwd=root, env=env)
            total, top = total + dt, max(top, peak)
            print(f"{stage:22s} {dt:7.1f} s {peak / 2**20:7.0f} MiB", flush=True)
        print(f"{'total':22s} {total:7.1f} s {top / 2**20:7.0f} MiB")


if __name__ == "__main__":
    main()

"""The quickstart's main job: `dvc repro` of the committed sample and params (the default profile) in a fresh copy
of the repo, with no network at all, as a newcomer runs it after `pip install -e .`.

    python benchmarks/quickstart.py [--profile NAME]

Prints the wall time, the peak summed RSS of its process tree (benchmarks/kit.py), how many stages ran, the
warnings printed (a clean run prints none) and the best leaderboard row. `--profile` applies another profile
first (`boulderseg profile NAME`); a profile that downloads weights cannot run here.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from kit import copy_repo, measured

from pipeline.core import profiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    args = parser.parse_args()
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("BOULDERSEG_OFFLINE", None)  # the network is off, not a switch
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_repo(Path(tmp) / "repo")
        profiles.apply(profiles.get(args.profile), root / "params.yaml")
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        output: list[str] = []
        seconds, peak = measured([shutil.which("unshare"), "-rn", "dvc", "repro"], cwd=root, env=env, output=output)
        ran = len(re.findall(r"Running stage '", output[0]))
        warnings = [line for line in output[0].splitlines() if "warning" in line.lower()]
        board = pd.read_csv(root / "reports" / "leaderboard.csv")
        best = board[board["source"] == "boulderseg"].sort_values("accuracy").iloc[-1]
        print(f"profile {args.profile}: dvc repro {seconds:.1f} s ({seconds // 60:.0f} min {seconds % 60:.0f} s), "
              f"peak RSS {peak / 2**20:,.0f} MiB, {ran} stages, {len(warnings)} warning line(s); best row "
              f"{best['backbone']} + {best['head']} {best['accuracy']:.1f} ± {best['accuracy_std']:.1f} %")
        for line in warnings[:10]:
            print(f"  {line}")


if __name__ == "__main__":
    main()

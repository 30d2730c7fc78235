"""Serial `dvc repro` against `boulderseg repro --workers 2` on the sample, every per-video stage stale.

    python benchmarks/cluster.py [--workers 2] [--repeat 3]

Builds the offline run of the sample in a temp copy of the repo, changes `frames.jpg_quality` (so every
frames, persons and features stage, and what follows, is stale), copies the project twice and runs the
same stages serially in one and on a local Dask cluster in the other, on the same machine. Prints both
times, their ratio, the driver's own planning and recording time, and whether the two dvc.lock files
are byte-identical; with `--repeat N`, N such pairs from fresh copies, then the median ratio and its spread.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from kit import copy_repo

from pipeline.core import profiles

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
                        "BOULDERSEG_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        base = copy_repo(Path(tmp) / "base")
        params = base / "params.yaml"
        profiles.apply(profiles.get("smoke"), params)  # random x3d_xs, as the README's figures
        p = yaml.safe_load(params.read_text())
        subprocess.run(["git", "init", "-q"], cwd=base, check=True)
        subprocess.run(["dvc", "repro"], cwd=base, env=env, check=True, capture_output=True)
        p["frames"]["jpg_quality"] = 85
        params.write_text(yaml.safe_dump(p, sort_keys=False))
        ratios = []
        for _ in range(args.repeat):
            serial, parallel = Path(tmp) / "serial", Path(tmp) / "parallel"
            for dst in (serial, parallel):
                shutil.rmtree(dst, ignore_errors=True)
                subprocess.run(["cp", "-a", str(base), str(dst)], check=True)
            t = time.perf_counter()
            done = subprocess.run(["dvc", "repro"], cwd=serial, env=env, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"serial dvc repro failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
            serial_s = time.perf_counter() - t
            t = time.perf_counter()
            out = subprocess.run([str(bin_dir / "boulderseg"), "repro", "--workers", str(args.workers)], cwd=parallel,
                                 env=env, check=True, capture_output=True, text=True).stdout
            parallel_s = time.perf_counter() - t
            driver = re.search(r"\(driver: .*\)", out)
            same = (serial / "dvc.lock").read_bytes() == (parallel / "dvc.lock").read_bytes()
            ratios.append(serial_s / parallel_s)
            print(f"serial dvc repro: {serial_s:.1f} s; boulderseg repro --workers {args.workers}: {parallel_s:.1f} s; "
                  f"{ratios[-1]:.2f}x; {driver.group(0) if driver else ''}; dvc.lock identical: {same}", flush=True)
        if args.repeat > 1:
            print(f"median {statistics.median(ratios):.2f}x, spread {min(ratios):.2f}-{max(ratios):.2f}x over "
                  f"{args.repeat} runs")

if __name__ == "__main__":
    main()

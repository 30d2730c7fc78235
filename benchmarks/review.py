"""Time to first paint of `boulderseg review`'s pages, in a fresh browser context each time (no cache), in
Debian's chromium, from the navigation's start:
- the video page of a 1,000-frame video (40 s at 25 fps): its first frame shown with every track drawn;
- the videos list: its first row drawn, and its "stale stages" column filled (when `dvc status` answers).

    python benchmarks/review.py [--loads 7]

Builds the committed sample's project with one more 40-s video (its labels, frames and persons stages only), so
most of its 40-odd stages never ran and `dvc status` takes seconds there (timed alone too), serves it with
`boulderseg review --no-browser --port 0`, and prints the minimum, median and maximum over the loads, with the
bytes the video page fetched before its first paint.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kit import copy_repo

from pipeline.annotations.sample import make_video


# The list page's moments, seen from outside the page (a script the browser runs before the page's own).
LIST_OBSERVER = """new MutationObserver(() => {
  const cells = [...document.querySelectorAll("[data-testid=stale]")];
  if (cells.length) window.firstRow ??= performance.now();
  if (cells.length && cells.every((c) => c.textContent !== "checking…")) window.staleFilled ??= performance.now();
}).observe(document, { childList: true, subtree: true, characterData: true });"""


def spread(name: str, values: list[float]) -> str:
    return f"{name}: min {min(values):.0f} ms, median {statistics.median(values):.0f} ms, max {max(values):.0f} ms"


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
        status = []
        for _ in range(3):
            start = time.perf_counter()
            run("dvc", "status")
            status.append(1000 * (time.perf_counter() - start))
        server = subprocess.Popen(["boulderseg", "review", "--no-browser", "--port", "0"], cwd=root, env=env,
                                  stdout=subprocess.PIPE, text=True)
        try:
            url = server.stdout.readline().strip()
            base, _, token = url.partition("/?token=")
            times, fetched, rows, filled = [], [], [], []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                            args=["--no-sandbox"])

                def fresh_page():
                    context = browser.new_context()
                    context.add_cookies([{"name": f"boulderseg_review_{base.rsplit(':', 1)[1]}", "value": token,
                                          "url": base}])
                    return context, context.new_page()

                for _ in range(args.loads):
                    context, page = fresh_page()
                    sizes: list[int] = []
                    page.on("requestfinished", lambda r, sizes=sizes: sizes.append(r.sizes()["responseBodySize"]))
                    page.goto(f"{base}/videos/climb9_face")
                    page.wait_for_function("() => window.review && window.review.ready")
                    times.append(page.evaluate("window.review.ready"))
                    fetched.append(sum(sizes))
                    assert page.evaluate("window.review.frames") == 1000
                    context.close()
                    context, page = fresh_page()
                    page.add_init_script(LIST_OBSERVER)
                    page.goto(base)
                    page.wait_for_function("() => window.staleFilled", timeout=120_000)
                    rows.append(page.evaluate("window.firstRow"))
                    filled.append(page.evaluate("window.staleFilled"))
                    context.close()
                browser.close()
        finally:
            server.terminate()
            server.wait()
    print(f"over {args.loads} cold loads each:")
    print(spread("first paint of a 1,000-frame video", times) +
          f"; {statistics.median(fetched) / 1024:.0f} KiB fetched (median)")
    print(spread("videos list, first row drawn", rows))
    print(spread("videos list, stale stages filled", filled))
    print(spread("`dvc status` alone in that project (3 runs)", status))


if __name__ == "__main__":
    main()

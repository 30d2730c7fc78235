"""The README and the docs/ site: a README that stays short with links that resolve, and a command reference that
is the CLI's own help. (`mkdocs build --strict` in .ci/run checks every page's links.)"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
REFERENCE = REPO / "docs" / "reference" / "cli.md"
REGENERATE = "python -m typer --app app pipeline.cli utils docs --name boulderseg --output docs/reference/cli.md"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def command_reference(out: Path) -> str:
    """The reference Typer writes from `pipeline.cli`'s app, as the committed one is made (REGENERATE)."""
    env = os.environ | {"PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, *REGENERATE.split()[1:-1], str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return out.read_text()


def relative_links(markdown: str) -> list[str]:
    """Every link and image target that is a path in this repository (no scheme, not a bare #anchor)."""
    outside_code = re.sub(r"```.*?```", "", markdown, flags=re.S)
    targets = [m.group(1) for m in LINK.finditer(outside_code)]
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def test_the_command_reference_is_the_clis_own_help(tmp_path):
    fresh = command_reference(tmp_path / "cli.md")
    assert "## `boulderseg add`" in fresh  # the whole tree, not the lazy module's `main`
    assert REFERENCE.read_text() == fresh, f"docs/reference/cli.md is stale: regenerate it with `{REGENERATE}`"


def test_the_readme_is_at_most_200_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= 200, f"README.md has {lines} lines: move the detail to a page under docs/ and link it"


def test_every_relative_link_in_the_readme_points_at_a_file_that_exists():
    links = relative_links(README.read_text())
    assert links, "README.md links no page of docs/"
    missing = [t for t in links if not (REPO / t.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links files that do not exist: {missing}"


def test_the_link_check_sees_links_images_and_anchors_but_not_code():
    text = "[a](docs/a.md#x) ![b](docs/b.png) [c](https://x.org) [d](#e)\n```\n[f](g.md)\n```\n"
    assert relative_links(text) == ["docs/a.md#x", "docs/b.png"]

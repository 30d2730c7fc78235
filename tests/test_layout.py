"""The layout of pipeline/ holds as drawn: each subpackage imports only the subpackages its docstring's `May import:`
line names (imports inside functions count), those lines form layers with no cycle, and pipeline/ holds subpackages
and the CLI, no loose modules."""
from __future__ import annotations

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from conftest import REPO


def subpackages(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "pipeline").iterdir() if (p / "__init__.py").is_file())


def allowed(root: Path, package: str) -> set[str]:
    """The subpackages `pipeline.<package>` may import, from its __init__ docstring."""
    doc = ast.get_docstring(ast.parse((root / "pipeline" / package / "__init__.py").read_text())) or ""
    found = re.search(r"^May import: (.+?)\.?$", doc, re.M)
    if found is None:
        raise AssertionError(f"pipeline/{package}/__init__.py: its docstring has no `May import: ...` line")
    return set() if found.group(1).startswith("nothing") else {n.strip() for n in found.group(1).split(",")}


def imported_under(path: Path, package: str = "pipeline") -> set[str]:
    """The names directly under `package` (subpackages or modules) that the file imports, anywhere in it and in
    any of Python's spellings."""
    depth, used = package.count(".") + 1, set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        assert not getattr(node, "level", 0), f"{path}:{node.lineno}: a relative import; use an absolute one"
        if isinstance(node, ast.ImportFrom) and node.module == package:
            used |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{package}."):
            used.add(node.module.split(".")[depth])
        elif isinstance(node, ast.Import):
            used |= {a.name.split(".")[depth] for a in node.names if a.name.startswith(f"{package}.")}
    return used


def violations(root: Path) -> list[str]:
    """Each import of a subpackage that the importing subpackage may not import."""
    found = []
    for package in subpackages(root):
        may = allowed(root, package) | {package}
        for path in sorted((root / "pipeline" / package).rglob("*.py")):
            found += [f"{path.relative_to(root)} imports pipeline.{part}, which pipeline.{package} may not "
                      f"(May import: {', '.join(sorted(may - {package})) or 'nothing'})"
                      for part in sorted(imported_under(path) - may)]
    return found


def test_every_subpackage_says_what_it_holds_and_which_subpackages_it_may_import():
    packages = subpackages(REPO)
    assert {"core", "warm", "cluster", "models", "media", "annotations", "persons", "features", "learning",
            "views"} <= set(packages)
    for package in packages:
        assert allowed(REPO, package) <= set(packages) - {package}, package


def test_no_module_imports_a_subpackage_its_own_may_not():
    assert violations(REPO) == []


def test_the_allowed_imports_are_layers_with_no_cycle():
    graph = {package: allowed(REPO, package) for package in subpackages(REPO)}
    order = list(TopologicalSorter(graph).static_order())
    assert order.index("core") == 0 and order.index("views") > order.index("learning") > order.index("features")


def test_pipeline_holds_subpackages_and_the_cli_and_no_module_is_long():
    assert sorted(p.name for p in (REPO / "pipeline").glob("*.py")) == ["__init__.py", "cli.py"]
    long = {str(p.relative_to(REPO)): n for p in (REPO / "pipeline").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_an_upward_import_or_a_cycle_is_reported(tmp_path):
    """The checks can fail: core importing media (an import inside a function), and two packages allowing each other."""
    for package, may, code in (("core", "nothing else of pipeline", "def f():\n    from pipeline.media import probe\n"),
                               ("media", "core", "from pipeline.core import errors\n")):
        (tmp_path / "pipeline" / package).mkdir(parents=True)
        (tmp_path / "pipeline" / package / "__init__.py").write_text(f'"""{package}.\n\nMay import: {may}.\n"""\n')
        (tmp_path / "pipeline" / package / "m.py").write_text(code)
    assert violations(tmp_path) == ["pipeline/core/m.py imports pipeline.media, which pipeline.core may not "
                                    "(May import: nothing)"]
    (tmp_path / "pipeline" / "core" / "__init__.py").write_text('"""core.\n\nMay import: media.\n"""\n')
    with pytest.raises(CycleError):
        list(TopologicalSorter({p: allowed(tmp_path, p) for p in subpackages(tmp_path)}).static_order())


def test_reading_a_workbook_and_interpreting_its_rows_go_one_way():
    """Within annotations, each module imports only those before it: text at the bottom, the reader (sheets) below
    the interpreter (segments), nothing calling back up."""
    order = ["text", "timeparse", "workbook", "sheets", "segments", "videotable", "validate", "catalog", "sample",
             "commands"]
    package = REPO / "pipeline" / "annotations"
    assert sorted(order) == sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__")
    for i, name in enumerate(order):
        used = imported_under(package / f"{name}.py", "pipeline.annotations")
        assert used <= set(order[:i]), f"{name} imports {sorted(used - set(order[:i]))}, above it"


def test_an_import_of_an_annotations_module_is_seen_however_it_is_spelled(tmp_path):
    (tmp_path / "m.py").write_text("import pipeline.annotations.segments\nfrom pipeline.annotations import sheets\n"
                                   "def f():\n    from pipeline.annotations.videotable import entries\n")
    assert imported_under(tmp_path / "m.py", "pipeline.annotations") == {"segments", "sheets", "videotable"}

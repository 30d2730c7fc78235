"""The project files a stage runs: the import closure of `stages/<stage>.py` inside the project."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = ("pipeline", "stages")


def _module_files(name: str, root: Path) -> list[Path]:
    """The files Python runs to import `name`: each package's __init__.py, then the module."""
    parts, files = name.split("."), []
    for i in range(1, len(parts) + 1):
        base = root.joinpath(*parts[:i])
        for f in (base / "__init__.py", base.with_suffix(".py")):
            if f.is_file():
                files.append(f)
    return files


def closure(module: str, root: Path) -> set[str]:
    """Paths (relative to `root`) of the files `python -m MODULE` runs inside the project.

    Imports anywhere in a file count, including those inside functions.
    """
    todo, seen = _module_files(module, root), set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{f}: relative import; use absolute ones"
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            for name in names:
                if name.split(".")[0] in PACKAGES:
                    todo += _module_files(name, root)
    return {str(f.relative_to(root)) for f in seen}


def entry_modules(stage: str) -> list[str]:
    """`stages.<stage>`; a per-family features stage `features-<family>[-unannotated]` also runs `pipeline.features.backbones.<family>`
    (a per-family train stage, `train-<family>`, reads stored features and runs no backbone code)."""
    name, _, family = stage.removesuffix("-unannotated").partition("-")
    return [f"stages.{name}", *([f"pipeline.features.backbones.{family}"] if name == "features" else [])]


def code_deps_problems(dvc_yaml: dict, root: Path) -> list[str]:
    """Stages whose code deps differ from the closure of their entry modules."""
    problems = []
    for name, stage in dvc_yaml["stages"].items():
        body = stage.get("do", stage)
        entry = entry_modules(name)
        if f"python -m {entry[0]} " not in body["cmd"] + " ":
            problems.append(f"{name}: cmd does not run `python -m {entry[0]}`")
        listed = {d for d in body.get("deps", []) if d.endswith(".py")}
        needed = set().union(*(closure(m, root) for m in entry))
        problems += [f"{name}: imports {f} but does not depend on it" for f in sorted(needed - listed)]
        problems += [f"{name}: depends on {f}, which it never imports" for f in sorted(listed - needed)]
    return problems

"""Names that become file names: a video key, a head. A name is never a path.

A key names `data/labels/<key>.csv`, `data/frames/<key>/`, `features/<backbone>/<key>.zarr`… so one
holding `..` or a separator would write outside the project. Every key is checked where it enters
(params.yaml's schema, `boulderseg add`), and paths built from names go through `under`, which
refuses a result outside its root.
"""
from __future__ import annotations

import re
from pathlib import Path

from pipeline.core.errors import BouldersegError

NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
RULE = "letters, digits, '_', '-' and '.' only, not starting with '.'"


def name_problem(name: object) -> str | None:
    """Why `name` cannot name a file of the pipeline, or None when it can."""
    if isinstance(name, str) and NAME.fullmatch(name):
        return None
    return f"'{name}' is not a name: it becomes a file name under data/, features/ and models/, so use {RULE}"


def check_name(name: str, *, what: str = "video key", hint: str = "") -> str:
    problem = name_problem(name)
    if problem:
        raise BouldersegError(f"{what} {problem}. {hint}".rstrip())
    return name


def under(root: str | Path, *names: str, suffix: str = "") -> Path:
    """`root/names[0]/…/names[-1]<suffix>`, refused unless every part is a name (or names joined by '+': a fusion of
    backbones) and the result lies inside `root`."""
    for name in names:
        for part in name.split("+"):
            check_name(part, what="path part")
    path = Path(root).joinpath(*names[:-1], names[-1] + suffix) if names else Path(root)
    if not path.resolve().is_relative_to(Path(root).resolve()):
        raise BouldersegError(f"{path} resolves outside {root} (through a link?); refusing to write there.")
    return path

"""Read params.yaml: each stage reads its own section (DVC tracks exactly those keys)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import BouldersegError

DEFAULT_PARAMS = Path("params.yaml")


def load(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise BouldersegError(
            f"{path}: params file not found. Run from the project root or pass --params PATH."
        )
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise BouldersegError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(params, dict):
        raise BouldersegError(f"{path}: expected a mapping of sections at the top level.")
    return params


def section(params: dict[str, Any], key: str, *, source: str | Path = DEFAULT_PARAMS) -> Any:
    """`params["a"]["b"]` for key "a.b", with an error naming the missing key."""
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise BouldersegError(f"{source}: missing key '{key}'. See the README's params table.")
        node = node[part]
    return node

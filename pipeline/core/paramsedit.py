"""Edit params.yaml in place, keeping its comments, order and quoting (ruamel's round trip).

Every write is checked (the result must still load as params) and atomic, so a failing edit leaves
the file as it was.
"""
from __future__ import annotations

from collections import Counter
from io import StringIO
from pathlib import Path
from typing import Any

from pipeline.core import params
from pipeline.core.atomic import atomic_output


def round_trip():
    """A ruamel YAML that writes back what it read: comments, order, quotes, `null`, no re-wrapped lines."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a line
    yaml.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def read(params_file: Path):
    """The file as ruamel's commented mappings, ready to edit and `write`."""
    return round_trip().load(params_file.read_text())


def write(params_file: Path, data) -> None:
    text = StringIO()
    round_trip().dump(data, text)
    with atomic_output(params_file) as tmp:
        tmp.write_text(text.getvalue())
        params.load(tmp)  # what is written must still load; otherwise the old file stays


def set_keys(params_file: Path, values: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set each dotted key (`features.backbones.mediapipe`) to its value; returns key -> (old, new) of the keys
    whose value changed. A list is written in flow style (`[a, b]`), as params.yaml writes lists."""
    from ruamel.yaml.comments import CommentedSeq

    text = params_file.read_text()
    data = round_trip().load(text)
    align = _comment_column(text)
    changed = {}
    for key, value in values.items():
        *path, last = key.split(".")
        node = data
        for part in path:
            node = node[part]
        old = node.get(last)
        if _plain(old) != value:
            if isinstance(value, list):
                value = CommentedSeq(value)
                value.fa.set_flow_style()
            node[last] = value
            changed[key] = (_plain(old), _plain(value))
            comment = node.ca.items.get(last, [None] * 3)[2]
            if comment is not None and align is not None:  # back in the file's column (pushed right if the value is long)
                comment.start_mark.column = align
    if changed:
        write(params_file, data)
    return changed


def _comment_column(text: str) -> int | None:
    """The column most end-of-line comments of the file start at."""
    columns = [line.index(" #") + 1 for line in text.splitlines() if " #" in line and line[:line.index(" #")].strip()]
    return Counter(columns).most_common(1)[0][0] if columns else None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value

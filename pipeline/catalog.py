"""Add a video to the `videos` table of params.yaml or take one out, keeping the file's comments and order.

Every check runs before anything is written: the video must decode and its annotation must label it
exactly as the `labels` stage would (the same message as `boulderseg validate` otherwise). Files are
copied, then params.yaml is replaced in one rename, so a failing add leaves the project as it was.
"""
from __future__ import annotations

import filecmp
import re
import shutil
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

from pipeline import params
from pipeline.annotations import LabelPolicy
from pipeline.atomic import atomic_output
from pipeline.errors import BouldersegError
from pipeline.videos import VideoEntry, label_video

KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
RAW = Path("data/raw")


def check_key(key: str) -> None:
    """A key names files under data/ and features/: a plain name, never a path."""
    if not KEY.fullmatch(key):
        raise BouldersegError(f"video key '{key}' is refused: it names files under data/ and features/, so it must be "
                              "letters, digits, '_' and '-' only (no '..', separators or absolute paths). "
                              "Pass --key NAME.")


@dataclass(frozen=True)
class Added:
    key: str
    entry: dict  # as written under videos.<key>
    labelled: str  # one line: frames and segments, and where they came from


def _round_trip():
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a line
    yaml.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def _write(params_file: Path, data) -> None:
    text = StringIO()
    _round_trip().dump(data, text)
    with atomic_output(params_file) as tmp:
        tmp.write_text(text.getvalue())
    params.load(params_file)  # what was written still loads


def _move_trailing_comment(src, dst) -> None:
    """The comment after an entry's last line (the next section's heading) follows whichever entry is last."""
    src_last, dst_last = list(src)[-1], list(dst)[-1]
    token = src.ca.items.get(src_last, [None] * 4)[2]
    if token is not None:
        src.ca.items[src_last][2] = None
        dst.ca.items.setdefault(dst_last, [None] * 4)[2] = token


def _place(src: Path, folder: Path) -> Path:
    """Copy `src` into `folder` under its own name; an identical file already there is reused."""
    dst = folder / src.name
    if dst.exists():
        if not filecmp.cmp(src, dst, shallow=False):
            raise BouldersegError(f"{dst} already exists with other content: rename {src} or pass --no-copy.")
        return dst
    with atomic_output(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def add_video(video: Path, annotation: Path, *, climb: str, params_file: Path, view: str | None = None,
              key: str | None = None, offset: float = 0.0, sheet: str | None = None, copy: bool = True) -> Added:
    """Check `video` and `annotation`, copy them under data/raw/ (unless not `copy`), add `videos.<key>`."""
    p = params.load(params_file)
    key = key or video.stem
    check_key(key)
    if key in p.videos:
        raise BouldersegError(f"{params_file}: videos.{key} exists already. Pass --key NAME, or `boulderseg remove {key}`.")
    for path, what in ((video, "video"), (annotation, "annotation")):
        if not path.is_file():
            raise BouldersegError(f"{path}: {what} not found.")
    policy = LabelPolicy.from_params(p.labels, fps=p.data.fps)
    result = label_video(VideoEntry(key, climb, video, annotation, sheet, offset), policy, fps=p.data.fps)
    if copy:
        video, annotation = _place(video, RAW / "videos"), _place(annotation, RAW / "annotations")
    entry = {"climb": climb, **({"view": view} if view else {}), "video": video.as_posix(),
             "annotation": annotation.as_posix(), **({"sheet": sheet} if sheet else {}),
             **({"offset": offset} if offset else {})}
    data = _round_trip().load(params_file.read_text())
    videos = data["videos"]
    last = list(videos)[-1]
    from ruamel.yaml.comments import CommentedMap

    videos[key] = CommentedMap(entry)
    _move_trailing_comment(videos[last], videos[key])
    _write(params_file, data)
    return Added(key, entry, f"{len(result.labels)} frames, {len(result.segments)} segments from {result.where}")


def remove_video(key: str, *, params_file: Path, delete: bool = False) -> dict:
    """Take `videos.<key>` out of params.yaml (and, with `delete`, its raw files no other entry uses)."""
    p = params.load(params_file)
    if key not in p.videos:
        raise BouldersegError(f"{params_file}: no videos.{key}; the table lists {', '.join(p.videos)}.")
    if len(p.videos) == 1:
        raise BouldersegError(f"{params_file}: videos.{key} is the only video; the table cannot be empty.")
    data = _round_trip().load(params_file.read_text())
    videos = data["videos"]
    entry = dict(videos[key])
    if key == list(videos)[-1]:
        _move_trailing_comment(videos[key], videos[list(videos)[-2]])
    del videos[key]
    _write(params_file, data)
    if delete:
        used = {Path(f) for k, v in p.videos.items() if k != key for f in (v.video, v.annotation)}
        for f in (Path(entry["video"]), Path(entry["annotation"])):
            if f not in used and f.exists():
                f.unlink()
    return entry

"""Add a video to the `videos` table of params.yaml or take one out, keeping the file's comments and order.

Every check runs before anything is written: the video must decode and its annotation must label it
exactly as the `labels` stage would (the same message as `boulderseg validate` otherwise). Files are
copied (a copied video tracked by DVC: minutes of footage do not belong in git), then params.yaml is replaced in
one rename, so a failing add leaves params.yaml as it was.
"""
from __future__ import annotations

import filecmp
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline.annotations.segments import LabelPolicy
from pipeline.annotations.videotable import VideoEntry, label_video
from pipeline.core import params, paramsedit
from pipeline.core.atomic import atomic_output
from pipeline.core.errors import BouldersegError
from pipeline.core.names import check_name
from pipeline.media.probe import output_frame_count, probe

RAW = Path("data/raw")


@dataclass(frozen=True)
class Added:
    key: str
    entry: dict  # as written under videos.<key>
    labelled: str  # one line: frames and segments, and where they came from
    tracked: Path | None = None  # the .dvc file `dvc add` wrote for the copied video (None: not tracked by add)


def _move_trailing_comment(src, dst) -> None:
    """The comment after an entry's last line (the next section's heading) follows whichever entry is last."""
    src_last, dst_last = list(src)[-1], list(dst)[-1]
    token = src.ca.items.get(src_last, [None] * 4)[2]
    if token is not None:
        src.ca.items[src_last][2] = None
        dst.ca.items.setdefault(dst_last, [None] * 4)[2] = token


def _place(src: Path, folder: Path, name: str | None = None) -> Path:
    """Copy `src` into `folder` as `name` (its own name by default); an identical file already there is reused."""
    dst = folder / (name or src.name)
    if dst.exists():
        if not filecmp.cmp(src, dst, shallow=False):
            raise BouldersegError(f"{dst} already exists with other content: pass another --key, delete it "
                                  f"(`boulderseg remove KEY --delete` if an entry uses it), or pass --no-copy.")
        return dst
    with atomic_output(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def track(path: Path) -> Path | None:
    """`dvc add` a raw file of a DVC project (the current directory), so git ignores it and the DVC remote keeps it;
    returns its .dvc file. Nothing in a directory that is not a DVC project, and nothing for a file git tracks (the
    sample's own videos, committed with the repository)."""
    from pipeline.core.commandline import dvc_executable

    if not Path(".dvc").is_dir():
        return None
    in_git = subprocess.run(["git", "ls-files", "--error-unmatch", str(path)], capture_output=True)
    if in_git.returncode == 0:
        return None
    r = subprocess.run([dvc_executable(), "add", "--quiet", str(path)], capture_output=True, text=True)
    if r.returncode:
        raise BouldersegError(f"`dvc add {path}` failed (params.yaml is unchanged; {path} stays copied, and a "
                              f"rerun of this add reuses it): {(r.stderr or r.stdout).strip()[-800:]}")
    return path.with_name(path.name + ".dvc")


def untrack(path: Path) -> None:
    """Undo `track`: `dvc remove` the file's .dvc file (and its .gitignore line); the file itself stays."""
    from pipeline.core.commandline import dvc_executable

    r = subprocess.run([dvc_executable(), "remove", "--quiet", f"{path}.dvc"], capture_output=True, text=True)
    if r.returncode:
        raise BouldersegError(f"`dvc remove {path}.dvc` failed: {(r.stderr or r.stdout).strip()[-800:]}")


def add_video(video: Path, annotation: Path | None, *, climb: str | None, params_file: Path, view: str | None = None,
              key: str | None = None, offset: float = 0.0, sheet: str | None = None, copy: bool = True) -> Added:
    """Check `video` (and `annotation`), copy them under data/raw/ (unless not `copy`; the video then `track`ed by
    DVC) and add the entry: to `videos` with an annotation, else to `unannotated`. Annotating a video listed as
    unannotated moves it."""
    p = params.load(params_file)
    key = key or video.stem
    check_name(key, hint="Pass --key NAME.")
    if key in p.videos:
        raise BouldersegError(f"{params_file}: videos.{key} exists already. Pass --key NAME, or `boulderseg remove {key}`.")
    if key in p.unannotated and annotation is None:
        raise BouldersegError(f"{params_file}: unannotated.{key} exists already. Pass --key NAME, or an annotation "
                              "to annotate it.")
    for path, what in ((video, "video"), (annotation, "annotation")):
        if path is not None and not path.is_file():
            raise BouldersegError(f"{path}: {what} not found.")
    if annotation is None:
        n_frames = output_frame_count(probe(video), p.data.fps)  # it decodes
        labelled = f"{n_frames} frames, no annotation: frames, persons and features only"
    else:
        if climb is None:
            raise BouldersegError("an annotated video needs --climb: the views of one climb share a fold.")
        policy = LabelPolicy.from_params(p.labels, fps=p.data.fps)
        result = label_video(VideoEntry(key, climb, video, annotation, sheet, offset), policy, fps=p.data.fps)
        labelled = f"{len(result.labels)} frames, {len(result.segments)} segments from {result.where}"
    tracked = None
    if copy:
        video = _place(video, RAW / "videos")
        tracked = track(video)
        if annotation is not None:
            # named after the video: predict's sheets are all segments.xlsx, and two of them must not collide
            annotation = _place(annotation, RAW / "annotations", f"{key}{annotation.suffix}")
    entry = {**({"climb": climb} if climb else {}), **({"view": view} if view else {}), "video": video.as_posix()}
    if annotation is not None:
        entry |= {"annotation": annotation.as_posix(), **({"sheet": sheet} if sheet else {}),
                  **({"offset": offset} if offset else {})}
    data = paramsedit.read(params_file)
    if key in p.unannotated:
        _drop(data, "unannotated", key)
    _append(data, "videos" if annotation is not None else "unannotated", key, entry)
    paramsedit.write(params_file, data)
    return Added(key, entry, labelled, tracked)


def _append(data, table: str, key: str, entry: dict) -> None:
    from ruamel.yaml.comments import CommentedMap

    if table not in data:
        data.insert(list(data).index("videos") + 1, table, CommentedMap())
    rows = data[table]
    rows.fa.set_block_style()
    rows[key] = CommentedMap(entry)
    if len(rows) > 1:
        _move_trailing_comment(rows[list(rows)[-2]], rows[key])


def _drop(data, table: str, key: str) -> dict:
    rows = data[table]
    entry = dict(rows[key])
    last = list(rows)[-1]
    token = rows[last].ca.items.get(list(rows[last])[-1], [None] * 4)[2] if key == last else None
    if token is not None and len(rows) > 1:
        _move_trailing_comment(rows[key], rows[list(rows)[-2]])
    del rows[key]
    if not rows:  # an empty table reads `{}`, the comment that followed its last entry now follows it
        rows.fa.set_flow_style()
        if token is not None:
            data.ca.items.setdefault(table, [None] * 4)[2] = token
    return entry


def remove_video(key: str, *, params_file: Path, delete: bool = False) -> tuple[str, dict]:
    """Take `videos.<key>` or `unannotated.<key>` out of params.yaml (and, with `delete`, its raw files no other
    entry uses); returns the table and the entry."""
    p = params.load(params_file)
    table = "videos" if key in p.videos else "unannotated" if key in p.unannotated else None
    if table is None:
        raise BouldersegError(f"{params_file}: no videos.{key} or unannotated.{key}; the tables list "
                              f"{', '.join([*p.videos, *p.unannotated])}.")
    if table == "videos" and len(p.videos) == 1:
        raise BouldersegError(f"{params_file}: videos.{key} is the only annotated video; the table cannot be empty.")
    data = paramsedit.read(params_file)
    entry = _drop(data, table, key)
    paramsedit.write(params_file, data)
    if delete:
        entries = [*((k, (v.video, v.annotation)) for k, v in p.videos.items()),
                   *((k, (v.video,)) for k, v in p.unannotated.items())]
        used = {Path(f) for k, files in entries if k != key for f in files}
        for f in (Path(entry["video"]), *([Path(entry["annotation"])] if "annotation" in entry else [])):
            if f not in used and f.with_name(f.name + ".dvc").exists():  # `add` tracked it: DVC's file and ignore go
                untrack(f)
            if f not in used and f.exists():
                f.unlink()
    return table, entry

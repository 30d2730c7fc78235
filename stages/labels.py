"""Stage `labels`: one video's annotation rows -> data/labels/<video>.csv (frame, time, label)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.core import params
from pipeline.core.commandline import ParamsOpt, run_stage


def main(
    video: Annotated[str, typer.Argument(help="The video's key under `videos` in params.yaml.")],
    out_csv: Annotated[Path, typer.Argument(help="Output CSV: frame,time,label, one row per frame.")],
    params_file: ParamsOpt = params.DEFAULT_PARAMS,
) -> None:
    """Turn one video's annotation rows into per-frame labels at data.fps (labels section; gaps: labels.default)."""
    import pandas as pd

    from pipeline.annotations.segments import LabelPolicy
    from pipeline.annotations.videotable import entries, label_video
    from pipeline.core.atomic import atomic_output
    from pipeline.core.errors import BouldersegError, warn_all

    p = params.load(params_file)
    fps = p.data.fps
    policy = LabelPolicy.from_params(p.labels, fps=fps)
    videos = entries(p.videos)
    if video not in videos:
        raise BouldersegError(f"{params_file}: no video '{video}' under videos; known: {', '.join(videos)}.")
    result = label_video(videos[video], policy, fps=fps)
    warn_all(result.warnings)
    n = len(result.labels)
    table = pd.DataFrame({"frame": range(n), "time": [i / fps for i in range(n)], "label": result.labels})
    with atomic_output(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    typer.echo(f"{out_csv}: {n} frames labelled from {len(result.segments)} segments of {result.where}")


if __name__ == "__main__":
    run_stage(main)

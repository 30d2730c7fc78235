"""Stage `frames`: one video -> data/frames/<video>/000000.jpg … at the pipeline fps."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.core import params
from pipeline.core.commandline import ParamsOpt, run_stage


def main(
    video: Annotated[Path, typer.Argument(help="Video file (anything ffmpeg decodes).")],
    out_dir: Annotated[Path, typer.Argument(help="Output directory for 000000.jpg, 000001.jpg, …")],
    params_file: ParamsOpt = params.DEFAULT_PARAMS,
) -> None:
    """Decode one video at data.fps into numbered JPG frames (resize and quality: frames section)."""
    from pipeline.media.frames import extract_frames

    p = params.load(params_file)
    n = extract_frames(video, out_dir, fps=p.data.fps, short_side=p.frames.short_side, jpg_quality=p.frames.jpg_quality,
                       workers=p.runtime.frames_workers)
    typer.echo(f"{out_dir}: {n} frames")


if __name__ == "__main__":
    run_stage(main)

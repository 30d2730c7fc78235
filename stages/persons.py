"""Stage `persons`: one video's frames -> data/persons/<video>.parquet (person filter)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.core import params
from pipeline.core.commandline import ParamsOpt, run_stage
from pipeline.warm.client import handoff


def main(
    frames_dir: Annotated[Path, typer.Argument(help="A video's frames directory.")],
    out_parquet: Annotated[Path, typer.Argument(help="Output parquet: one row per frame.")],
    params_file: ParamsOpt = params.DEFAULT_PARAMS,
) -> None:
    """Detect persons on every persons.every-th frame; frames with nobody nearby get person=false."""
    p = params.load(params_file)
    handoff(p.runtime.warm_seconds)  # returns only where the stage must run in this process
    from pipeline.persons import registry
    from pipeline.persons.filter import Search, detect_persons, summary

    detector = registry.build(p.persons, pretrained=p.weights.pretrained, weights_dir=p.runtime.weights_dir,
                               seed=p.weights.seed, device=p.runtime.device)
    table = detect_persons(frames_dir, out_parquet, detector=detector, every=p.persons.every,
                           batch=p.runtime.persons_batch, search=Search.of(p.persons), fps=p.data.fps)
    summary(table, out_parquet)


if __name__ == "__main__":
    run_stage(main)

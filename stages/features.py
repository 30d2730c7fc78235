"""Stage `features`: one video's frames -> features/<backbone>/<video>.zarr, for one backbone."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.core import params
from pipeline.core.commandline import ParamsOpt, run_stage
from pipeline.warm.client import handoff


def main(
    backbone: Annotated[str, typer.Argument(help="A backbone name (`boulderseg backbones` lists them).")],
    frames_dir: Annotated[Path, typer.Argument(help="A video's frames directory.")],
    out_zarr: Annotated[Path, typer.Argument(help="Output Zarr store, e.g. features/x3d_xs/VIDEO.zarr.")],
    family: Annotated[str | None, typer.Option(help="The backbone's family: only its module is imported.")] = None,
    persons: Annotated[Path | None, typer.Option(help="The video's persons parquet: the climber's track, for "
                                                      "features.crop climber and for backbones that take the "
                                                      "tracked person's box (flow).")] = None,
    params_file: ParamsOpt = params.DEFAULT_PARAMS,
) -> None:
    """Extract frozen-backbone features over sliding windows into a chunked Zarr store (reused if it is current)."""
    p = params.load(params_file)
    handoff(p.runtime.warm_seconds)  # returns only where the stage must run in this process
    from pipeline.features.backbones import get
    from pipeline.features.crop import Crop
    from pipeline.features.extract import extract_features

    f, spec = p.features, get(backbone, family)
    fs, reused = extract_features(
        frames_dir, out_zarr, backbone=backbone, family=family, persons=persons, pretrained=p.weights.pretrained,
        seed=p.weights.seed, pooling=f.pooling(spec.name, spec.family), clip=f.clip,
        crop=Crop(**f.crop_settings()), fps=p.data.fps, window=f.window, stride=f.stride, dtype=f.dtype,
        skip_static=f.skip_static, pose_smoothing=f.pose_smoothing,
        weights_dir=p.runtime.weights_dir, batch_size=p.runtime.features_batch, device=p.runtime.device,
        workers=p.runtime.features_workers)
    typer.echo(f"{out_zarr}: features {fs.features.shape}{' (current: reused)' if reused else ''}")


if __name__ == "__main__":
    run_stage(main)

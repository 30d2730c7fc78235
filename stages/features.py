"""Stage `features`: one video's frames -> features/<backbone>/<video>.zarr."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline import params
from pipeline.cliutil import ParamsOpt, run_stage


def main(
    frames_dir: Annotated[Path, typer.Argument(help="A video's frames directory.")],
    out_zarr: Annotated[Path, typer.Argument(help="Output Zarr store, e.g. features/x3d_xs/VIDEO.zarr.")],
    params_file: ParamsOpt = params.DEFAULT_PARAMS,
) -> None:
    """Extract frozen-backbone features over sliding windows into a chunked Zarr store."""
    from pipeline.features import extract_features

    p = params.load(params_file)
    fs = extract_features(frames_dir, out_zarr, backbone=p.features.backbone, pretrained=p.weights.pretrained,
                          seed=p.weights.seed, fps=p.data.fps, window=p.features.window, stride=p.features.stride,
                          weights_dir=p.runtime.weights_dir, batch_size=p.runtime.features_batch,
                          device=p.runtime.device, workers=p.runtime.features_workers)
    typer.echo(f"{out_zarr}: features {fs.features.shape}")


if __name__ == "__main__":
    run_stage(main)

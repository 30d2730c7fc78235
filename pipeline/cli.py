"""`boulderseg`: every command, declared here; each command's body lives in the subpackage it belongs to.

The stage commands (`boulderseg stage NAME`) are the `main` of each `stages/<name>.py`, the same function dvc.yaml
runs as `python -m stages.<name>`; heavy imports happen inside the commands, so `--help` stays fast, and
`boulderseg stage NAME …` imports that stage alone (`main`).
"""
import functools
import importlib
import sys
from typing import Annotated

from pipeline.core.errors import exit_130_on_interrupt

exit_130_on_interrupt()

import typer  # noqa: E402 - after the hook: Ctrl-C while importing is one line too

from pipeline.core.commandline import register  # noqa: E402

STAGES = ("labels", "stats", "frames", "persons", "features", "folds", "train", "evaluate")
MOVED = {**{name: f"stage {name}" for name in STAGES}, "timeline": "inspect timeline",
         "airgapped": "profile default --run"}  # old command -> what replaced it, named by the error an old call gets
HELP = ("Bouldering video segmentation: annotations + videos -> frames, person filter, cached backbone features, "
        "trained and evaluated heads. `dvc repro` runs every stage (`boulderseg stage NAME` runs one on one item); "
        "the other commands add videos, show what the pipeline stored, segment new climbs and review them.")
STAGE_HELP = ("The pipeline's stages, each on one item, as dvc.yaml runs them (`python -m stages.NAME`): "
              "`dvc repro` runs them for you, reading their sections of params.yaml.")


def show_version(value: bool) -> None:
    """`--version`: the installed package's version."""
    if value:
        from importlib.metadata import version

        typer.echo(f"boulderseg {version('boulderseg')}")
        raise typer.Exit()


def options(
    version: Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True,
                                          help="Print boulderseg's version and exit.")] = False,
) -> None:
    """The options of `boulderseg` itself."""


@functools.cache
def build() -> typer.Typer:
    """The whole command tree: the user's commands, then the groups (the stages among them)."""
    from pipeline.annotations import commands as dataset
    from pipeline.cluster import commands as cluster
    from pipeline.core import commands as setup
    from pipeline.learning import commands as learning
    from pipeline.review import commands as review
    from pipeline.views import commands as views

    commands = {  # name -> body, listed by `--help` in this order
        "add": dataset.add, "remove": dataset.remove, "status": views.status, "predict": views.predict,
        "verify": views.verify, "repro": cluster.repro, "profile": setup.profile, "validate": dataset.validate,
        "backbones": views.list_backbones, "heads": views.list_heads, "score": learning.score,
        "sample": dataset.sample, "review": review.review, "report": review.report,
    }
    groups = {  # group -> (help, {name -> body})
        "inspect": ("Look at what the pipeline stored.", {"video": views.inspect_video,
                                                           "features": views.inspect_features,
                                                           "timeline": views.timeline,
                                                           "crops": views.inspect_crops}),
        "export": ("Write the feature store in other tools' layouts.", {"mstcn": learning.export_mstcn}),
        "stage": (STAGE_HELP, {name: importlib.import_module(f"stages.{name}").main for name in STAGES}),
    }
    tree = typer.Typer(help=HELP, no_args_is_help=True, pretty_exceptions_enable=False)
    tree.callback(help=HELP)(options)
    for name, body in commands.items():
        register(tree, body, name)
    for group, (text, members) in groups.items():
        sub = typer.Typer(help=text, no_args_is_help=True)
        tree.add_typer(sub, name=group)
        for name, body in members.items():
            register(sub, body, name)
    return tree


def main() -> None:
    """`boulderseg`. `stage NAME` builds only that stage's command: start-up is much of a short stage's time."""
    if len(sys.argv) > 2 and sys.argv[1] == "stage" and sys.argv[2] in STAGES:
        one = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        register(one, importlib.import_module(f"stages.{sys.argv[2]}").main)
        one(args=sys.argv[3:], prog_name=f"boulderseg stage {sys.argv[2]}")
    elif len(sys.argv) > 1 and sys.argv[1] in MOVED:
        typer.echo(f"error: `boulderseg {sys.argv[1]}` is now `boulderseg {MOVED[sys.argv[1]]}`.", err=True)
        raise SystemExit(2)
    else:
        build()()


def __getattr__(name: str) -> typer.Typer:
    """`app`, the whole tree, built on first use: a stage command never pays for the others' imports."""
    if name == "app":  # `from pipeline.cli import app`: the whole tree, built when asked for
        return build()
    raise AttributeError(name)

"""`boulderseg`: every command, declared here; each command's body lives in the subpackage it belongs to.

The stage commands are the `main` of each `stages/<name>.py`, the same function dvc.yaml runs as
`python -m stages.<name>`; heavy imports happen inside the commands, so `--help` stays fast, and
`boulderseg STAGE …` imports that stage alone (`main`).
"""
import functools
import importlib
import sys

from pipeline.core.errors import exit_130_on_interrupt

exit_130_on_interrupt()

import typer  # noqa: E402 - after the hook: Ctrl-C while importing is one line too

from pipeline.core.commandline import friendly  # noqa: E402

STAGES = ("labels", "stats", "frames", "persons", "features", "folds", "train", "evaluate")
HELP = ("Bouldering video segmentation: annotations + videos -> frames, person filter, cached backbone features, "
        "trained and evaluated heads. `dvc repro` runs every stage; each command here runs one stage on one item, "
        "reading its sections of params.yaml.")


@functools.cache
def build() -> typer.Typer:
    """The whole command tree: the stages, then every other command and group."""
    from pipeline.annotations import commands as dataset
    from pipeline.cluster import commands as cluster
    from pipeline.core import commands as setup
    from pipeline.learning import commands as learning
    from pipeline.review import commands as review
    from pipeline.views import commands as views

    commands = {  # name -> body, listed by `--help` after the stages in this order
        "add": dataset.add, "remove": dataset.remove, "status": views.status, "timeline": views.timeline,
        "predict": views.predict, "verify": views.verify, "repro": cluster.repro, "profile": setup.profile,
        "airgapped": setup.airgapped, "validate": dataset.validate, "backbones": views.list_backbones,
        "heads": views.list_heads, "score": learning.score, "sample": dataset.sample, "review": review.review,
        "report": review.report,
    }
    groups = {  # group -> (help, {name -> body})
        "export": ("Write the feature store in other tools' layouts.", {"mstcn": learning.export_mstcn}),
        "inspect": ("Look at what the pipeline stored.", {"video": views.inspect_video,
                                                           "features": views.inspect_features}),
    }
    tree = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    for name in STAGES:
        tree.command(name)(friendly(importlib.import_module(f"stages.{name}").main))
    for name, body in commands.items():
        tree.command(name)(friendly(body))
    for group, (text, members) in groups.items():
        sub = typer.Typer(help=text, no_args_is_help=True)
        tree.add_typer(sub, name=group)
        for name, body in members.items():
            sub.command(name)(friendly(body))
    return tree


def main() -> None:
    """`boulderseg`. A stage command builds only its own command: start-up is much of a short stage's time."""
    if len(sys.argv) > 1 and sys.argv[1] in STAGES:
        one = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        one.command()(friendly(importlib.import_module(f"stages.{sys.argv[1]}").main))
        one(args=sys.argv[2:], prog_name=f"boulderseg {sys.argv[1]}")
    else:
        build()()


def __getattr__(name: str) -> typer.Typer:
    """`app`, the whole tree, built on first use: a stage command never pays for the others' imports."""
    if name == "app":  # `from pipeline.cli import app`: the whole tree, built when asked for
        return build()
    raise AttributeError(name)

"""`boulderseg`: every command, declared here; each command's body lives in the subpackage it belongs to.

The stage commands are the `main` of each `stages/<name>.py`, the same function dvc.yaml runs as
`python -m stages.<name>`; heavy imports happen inside the commands, so `--help` stays fast.
"""
import importlib

from pipeline.core.errors import exit_130_on_interrupt

exit_130_on_interrupt()

import typer  # noqa: E402 - after the hook: Ctrl-C while importing is one line too

from pipeline.annotations import commands as dataset  # noqa: E402
from pipeline.cluster import commands as cluster  # noqa: E402
from pipeline.core import commands as setup  # noqa: E402
from pipeline.core.commandline import friendly  # noqa: E402
from pipeline.learning import commands as learning  # noqa: E402
from pipeline.review import commands as review  # noqa: E402
from pipeline.views import commands as views  # noqa: E402

STAGES = ("labels", "stats", "frames", "persons", "features", "folds", "train", "evaluate")
COMMANDS = {  # name -> body, listed by `--help` after the stages in this order
    "add": dataset.add, "remove": dataset.remove, "status": views.status, "timeline": views.timeline,
    "predict": views.predict, "verify": views.verify, "repro": cluster.repro, "profile": setup.profile,
    "airgapped": setup.airgapped, "validate": dataset.validate, "backbones": views.list_backbones,
    "heads": views.list_heads, "score": learning.score, "sample": dataset.sample, "review": review.review,
    "report": review.report,
}
GROUPS = {  # group -> (help, {name -> body})
    "export": ("Write the feature store in other tools' layouts.", {"mstcn": learning.export_mstcn}),
    "inspect": ("Look at what the pipeline stored.", {"video": views.inspect_video,
                                                       "features": views.inspect_features}),
}

app = typer.Typer(
    help="Bouldering video segmentation: annotations + videos -> frames, person filter, "
    "cached backbone features, trained and evaluated heads. `dvc repro` runs every stage; "
    "each command here runs one stage on one item, reading its sections of params.yaml.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _name in STAGES:
    app.command(_name)(friendly(importlib.import_module(f"stages.{_name}").main))
for _name, _body in COMMANDS.items():
    app.command(_name)(friendly(_body))
for _group, (_help, _commands) in GROUPS.items():
    _sub = typer.Typer(help=_help, no_args_is_help=True)
    app.add_typer(_sub, name=_group)
    for _name, _body in _commands.items():
        _sub.command(_name)(friendly(_body))

"""What every command shares: the --params option, and one clear message per error."""
from __future__ import annotations

import contextlib
import functools
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from pipeline.core.errors import INTERRUPTED, BouldersegError, Stopped
from pipeline.core.params import DEFAULT_PARAMS

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read the stage's sections from.")]
__all__ = ["DEFAULT_PARAMS", "ParamsOpt", "dvc_executable", "friendly", "run_stage"]


def dvc_executable() -> str:
    """The `dvc` of the environment boulderseg runs in, whether or not that environment is activated."""
    beside = Path(sys.executable).parent / "dvc"
    found = str(beside) if beside.is_file() else shutil.which("dvc")
    if found is None:
        raise BouldersegError("dvc not found: it is installed with boulderseg (pip install -e .); activate that "
                              "environment, or run `dvc repro` yourself.")
    return found


def friendly(fn: Callable) -> Callable:
    """Print a BouldersegError as one clear message and exit 1; Ctrl-C exits 130 (a `Stopped`: 128+N)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BouldersegError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt as e:
            signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
            by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
            with contextlib.suppress(OSError):  # a terminal hung up (SIGHUP) takes no more lines
                typer.echo(INTERRUPTED.replace("interrupted", f"interrupted{by}", 1), err=True)
            raise typer.Exit(128 + signum) from None

    return wrapper


def run_stage(main: Callable) -> None:
    """`python -m stages.NAME ARGS`, as dvc.yaml runs it: the same command as `boulderseg NAME ARGS`."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(friendly(main))
    app()

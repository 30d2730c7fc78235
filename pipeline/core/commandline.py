"""What every command shares: the --params options, one clear message per error, help that reflows."""
from __future__ import annotations

import contextlib
import functools
import inspect
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from pipeline.core.errors import INTERRUPTED, BouldersegError, Stopped
from pipeline.core.params import DEFAULT_PARAMS

ParamsOpt = Annotated[Path, typer.Option("--params", help="The params.yaml to read settings and the videos tables "
                                                           "from; this command never changes it.")]
EditedParamsOpt = Annotated[Path, typer.Option("--params", help="The params.yaml this command changes (its comments "
                                                                 "and key order kept).")]
__all__ = ["DEFAULT_PARAMS", "EditedParamsOpt", "ParamsOpt", "dvc_executable", "friendly", "register", "run_stage"]


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


def unwrapped(doc: str | None) -> str:
    """A docstring as --help shows it: paragraphs kept, each one line that the terminal wraps (Typer keeps a
    paragraph's hard line breaks, which render ragged at any other width)."""
    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(doc or "").split("\n\n"))


def register(app: typer.Typer, fn: Callable, name: str | None = None) -> None:
    """`fn` as a command of `app`: its docstring as reflowing help, its errors as one message (`friendly`)."""
    app.command(name, help=unwrapped(fn.__doc__))(friendly(fn))


def run_stage(main: Callable) -> None:
    """`python -m stages.NAME ARGS`, as dvc.yaml runs it: the same command as `boulderseg stage NAME ARGS`."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app, main)
    app()

"""The one exception type users see: a message that names the file and says what to do."""
import os
import sys
from collections.abc import Sequence


INTERRUPTED = "interrupted: no partial output was kept; rerun to finish."


class BouldersegError(Exception):
    """A problem with the user's input or environment; the CLI prints it and exits 1."""


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, where a command handles them as a Ctrl-C; the CLI exits 128+`signum`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def warn(message: str) -> None:
    """A problem the run works around (and says how): printed to stderr, never fatal."""
    print(f"warning: {message}", file=sys.stderr)


def summarize(messages: Sequence[str], *, limit: int = 5, what: str = "warning") -> list[str]:
    """The first `limit` messages, then one line counting the rest (a 100,000-row sheet is not 100,000 lines)."""
    if len(messages) <= limit:
        return list(messages)
    return [*messages[:limit], f"... and {len(messages) - limit:,} more {what}s like these ({len(messages):,} in all)"]


def warn_all(messages: Sequence[str], *, limit: int = 5) -> None:
    for message in summarize(messages, limit=limit):
        warn(message)


def exit_130_on_interrupt() -> None:
    """Ctrl-C before a command's own code runs (while Python imports it): one line and exit 130, as
    `pipeline.core.commandline.friendly` does once it runs, instead of a traceback."""
    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            print(INTERRUPTED, file=sys.stderr, flush=True)
            os._exit(128 + getattr(value, "signum", 2))
        sys.__excepthook__(kind, value, tb)

    sys.excepthook = hook

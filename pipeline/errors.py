"""The one exception type users see: a message that names the file and says what to do."""
import sys


class BouldersegError(Exception):
    """A problem with the user's input or environment; the CLI prints it and exits 1."""


def warn(message: str) -> None:
    """A problem the run works around (and says how): printed to stderr, never fatal."""
    print(f"warning: {message}", file=sys.stderr)

"""The one exception type users see: a message that names the file and says what to do."""


class BouldersegError(Exception):
    """A problem with the user's input or environment; the CLI prints it and exits 1."""

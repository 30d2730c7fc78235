"""boulderseg: the pipeline's code; each `stages/<name>.py` is a thin entry point over it."""

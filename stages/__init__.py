"""One thin entry module per DVC stage: read the stage's params section, call `pipeline`."""

"""One thin entry module per DVC stage: read the stage's params section, call `pipeline`."""
from pipeline.core.errors import exit_130_on_interrupt

exit_130_on_interrupt()

"""A video's persons parquet rewritten so that only a share of its frames pass the filter (a real run's table,
its other columns kept), as the person filter leaves a video it mostly cannot see."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def lower_person_share(parquet: Path, share: float) -> None:
    table = pq.read_table(parquet)
    person = np.arange(table.num_rows) < round(share * table.num_rows)
    i = table.schema.get_field_index("person")
    pq.write_table(table.set_column(i, "person", pa.array(person)), parquet)

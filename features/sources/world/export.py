"""Turn simulated records into source-system exports (``raw/``) and hidden truth (``truth/``).

Each table is streamed to one Parquet file, one row group per chunk-month, so peak
memory stays bounded by one chunk. Identifiers and timestamps are formatted here,
the way the source systems would hold them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .journal import aside

TS = pa.timestamp("us", tz="UTC")
RAW_TABLES = (
    "crm_customers", "billing_invoices", "product_usage", "support_tickets", "complaints",
    "orders", "survey_invitations", "survey_responses", "interventions",
)
TRUTH_TABLES = (
    "customer_traits", "satisfaction_monthly", "survey_truth", "churn", "intervention_effects",
    "action_effects",
)


class Clock:
    """Converts float days since the history start into dates and UTC timestamps."""

    def __init__(self, start: date, months: int):
        self.start = np.datetime64(start, "D")
        first = np.datetime64(start, "M")
        edges = (first + np.arange(months + 1)).astype("datetime64[D]")
        self.day0 = (edges - self.start).astype(int)
        self.end_day = int(self.day0[-1])

    def dates(self, days) -> pa.Array:
        d = self.start + np.floor(np.asarray(days, float)).astype("timedelta64[D]")
        return pa.array(d, pa.date32())

    def optional_dates(self, days) -> pa.Array:
        days = np.asarray(days, float)
        mask = days < 0
        d = self.start + np.floor(np.where(mask, 0, days)).astype("timedelta64[D]")
        return pa.array(d, pa.date32(), mask=mask)

    def stamps(self, days, mask=None) -> pa.Array:
        secs = np.rint(np.asarray(days, float) * 86400).astype("int64")
        ts = self.start.astype("datetime64[s]") + secs.astype("timedelta64[s]")
        return pa.array(ts.astype("datetime64[us]"), pa.timestamp("us"), mask=mask).cast(TS)


class Sink:
    """Parquet writers for every table, plus the running id counters."""

    def __init__(self, raw_dir: Path, truth_dir: Path):
        self.dirs = {t: raw_dir for t in RAW_TABLES} | {t: truth_dir for t in TRUTH_TABLES}
        for d in (raw_dir, truth_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.counters: dict[str, int] = {}
        self.rows: dict[str, int] = {}

    def next_ids(self, prefix: str, n: int) -> tuple[pa.Array, int]:
        """n new identifiers ``<prefix>000000123`` and the first sequence number used."""
        first = self.counters.get(prefix, 0)
        self.counters[prefix] = first + n
        return format_ids(prefix, np.arange(first, first + n)), first

    def write(self, table: str, columns: dict) -> None:
        tab = pa.table(columns)
        if table not in self.writers:
            path = self.dirs[table] / f"{table}.parquet"
            self.writers[table] = pq.ParquetWriter(path, tab.schema, compression="zstd")
        self.writers[table].write_table(tab)
        self.rows[table] = self.rows.get(table, 0) + tab.num_rows

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


def format_ids(prefix: str, numbers: np.ndarray, width: int = 9) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width=width,
                          padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def pick(labels: np.ndarray, codes, mask=None) -> pa.Array:
    """Categorical codes to their string labels (nulls where ``mask``)."""
    codes = np.asarray(codes)
    safe = np.where(codes < 0, 0, codes)
    return pa.array(labels[safe], pa.string(), mask=mask)


SNAPSHOT_TABLES = ("crm_customers", "customer_traits", "churn")  # the state at the export date
STEP_TRUTH_TABLES = ("plan_delivery",)   # what became of each planned action (world stepping)


class AppendSink(Sink):
    """A ``Sink`` that adds new months to existing exports: each table is rewritten as its
    old row groups followed by the new ones (snapshot tables are replaced). ``write_aside``
    writes the new files beside the old ones; ``journal.commit`` swaps them all in at once."""

    def __init__(self, raw_dir: Path, truth_dir: Path, counters: dict[str, int]):
        super().__init__(raw_dir, truth_dir)
        self.dirs |= {t: truth_dir for t in STEP_TRUTH_TABLES}
        self.counters = dict(counters)
        self.pieces: dict[str, list[pa.Table]] = {}

    def write(self, table: str, columns: dict) -> None:
        tab = pa.table(columns)
        self.pieces.setdefault(table, []).append(tab)
        self.rows[table] = self.rows.get(table, 0) + tab.num_rows

    def targets(self) -> list[Path]:
        """The files the step replaces, in the order they were first written."""
        return [self.dirs[table] / f"{table}.parquet" for table in self.pieces]

    def write_aside(self) -> None:
        """Each table's new version at ``journal.aside`` of its path."""
        for table, pieces in self.pieces.items():
            path = self.dirs[table] / f"{table}.parquet"
            old = pq.ParquetFile(path) if path.exists() and table not in SNAPSHOT_TABLES else None
            schema = old.schema_arrow if old is not None else pieces[0].schema
            with pq.ParquetWriter(aside(path), schema, compression="zstd") as writer:
                for i in range(old.num_row_groups if old is not None else 0):
                    writer.write_table(old.read_row_group(i))
                for piece in pieces:
                    writer.write_table(piece.cast(schema))

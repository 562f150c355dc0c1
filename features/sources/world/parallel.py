"""`cem simulate` with its customer chunks on several processes (a Dask cluster's workers).

Each chunk already has its own random stream (``[seed, chunk]``) and shares only the
regional outages with the others, so chunks can run anywhere in any order. Two things tie
them together in the in-process run, and both are restored here so that the files are the
same, byte for byte, as ``simulate_world`` writes for the same parameters:

* **Row order.** In-process, every table is one Parquet file with one row group per
  chunk-month, chunk after chunk. Here each chunk writes its tables to a part folder (fast
  LZ4, one row group per chunk-month, as the sink writes them); once every chunk is done,
  each table's row groups are copied into its final file in chunk order, one row group in
  memory at a time (tables are independent: the cluster copies them side by side).
  Returning the chunks' tables to the driver instead would hold whole chunks' tables in
  its memory while it waits for the earlier chunks.
* **Identifier sequences.** Tickets, orders, invoices, invitations, responses, complaints
  and interventions are numbered across chunks (``T000000123``). A chunk on a worker cannot
  know how many earlier chunks used, so it numbers from 0 and reports its counts; at the
  copy each identifier of a known prefix is shifted by the earlier chunks' counts
  (``identifiers``).

The chunks' saved state (``world_state/chunk_*.npz``) is written by the workers directly;
``state.json`` by the driver once every chunk has finished. Workers write by path: on a
real cluster the data folders must be on storage every worker mounts at the same path.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from configs.settings import SimulateParams

from .export import RAW_TABLES, TRUTH_TABLES, Clock, Sink
from .identifiers import ID_COLUMNS, renumber
from .journal import discard as discard_step
from .simulate import WorldSummary, chunk_numbers, simulate_chunk, world_setup, write_notes
from .state import save_chunk, save_meta, state_dir

PARTS_DIR = ".simulate-parts"       # under the truth folder, removed once combined
PART_COMPRESSION = "lz4"            # parts are read once, right away: speed over size


@dataclass(frozen=True)
class ChunkJob:
    """Everything a worker needs to simulate one chunk (small: no customer data)."""

    params: SimulateParams
    index: int
    first: int              # first customer of the chunk (0-based)
    outages: np.ndarray
    n_reps: int
    parts: str              # this chunk's part folder (rewritten whole if the task is rerun)
    saved: str              # the world-state folder


@dataclass
class ChunkResult:
    """What a worker sends back: counts and the random stream's final state, no rows."""

    index: int
    counters: dict[str, int]
    rows: dict[str, int]
    stream: dict


@dataclass
class Plan:
    params: SimulateParams
    raw_dir: Path
    truth_dir: Path
    master: np.random.Generator
    jobs: list[ChunkJob] = field(default_factory=list)

    @property
    def parts(self) -> Path:
        return Path(self.truth_dir) / PARTS_DIR


class PartSink(Sink):
    """A chunk's own sink: every table in its part folder, identifiers numbered from 0."""

    def __init__(self, folder: Path):
        super().__init__(folder, folder)

    def write(self, table: str, columns: dict) -> None:
        tab = pa.table(columns)
        if table not in self.writers:
            path = self.dirs[table] / f"{table}.parquet"
            self.writers[table] = pq.ParquetWriter(path, tab.schema, compression=PART_COMPRESSION)
        self.writers[table].write_table(tab)
        self.rows[table] = self.rows.get(table, 0) + tab.num_rows


def plan_chunks(params: SimulateParams, raw_dir: Path, truth_dir: Path) -> Plan:
    """The run's chunk jobs; clears the previous saved state and any parts left by a crash."""
    master, outages, n_reps, starts = world_setup(params)
    plan = Plan(params, Path(raw_dir), Path(truth_dir), master)
    saved = state_dir(plan.truth_dir)
    discard_step(plan.truth_dir)           # a step interrupted in an older world: forget it
    for folder in (saved, plan.parts):
        shutil.rmtree(folder, ignore_errors=True)
    plan.parts.mkdir(parents=True)
    plan.raw_dir.mkdir(parents=True, exist_ok=True)   # as the in-process sink makes them
    # absolute paths: workers may run in another folder (or on another host, same mount)
    plan.jobs = [ChunkJob(params, c, first, outages, n_reps,
                          str((plan.parts / f"chunk_{c:05d}").resolve()), str(saved.resolve()))
                 for c, first in enumerate(starts)]
    return plan


def run_chunk(job: ChunkJob) -> ChunkResult:
    """On a worker: simulate one chunk into its part folder and save its state."""
    params = job.params
    clock = Clock(params.start_date, params.months)
    rng = np.random.default_rng([params.seed, job.index])
    sink = PartSink(Path(job.parts))
    try:
        cs = simulate_chunk(rng, chunk_numbers(params, job.first), params, clock, job.outages,
                            job.n_reps, sink, lambda t: None)
    finally:
        sink.close()
    save_chunk(Path(job.saved), job.index, cs)
    return ChunkResult(job.index, dict(sink.counters), dict(sink.rows), rng.bit_generator.state)


@dataclass(frozen=True)
class TableJob:
    """Copy one table's parts, in chunk order, into its final file (on a worker or here)."""

    table: str
    parts: tuple[str, ...]                 # the chunks' part files, in chunk order
    offsets: tuple[dict[str, int], ...]    # per chunk: identifiers used by earlier chunks
    out: str
    rows: int                              # in all chunks: the job's size


def finish(plan: Plan, results: Iterable[ChunkResult],
           run_tables: Callable[[list[TableJob]], object] | None = None) -> WorldSummary:
    """Combine the parts into the final files, then ``state.json`` and the notes.

    ``run_tables`` runs the table jobs (tables are independent, so a cluster combines them
    side by side); by default they run here, one after the other.
    """
    results = sorted(results, key=lambda r: r.index)
    if [r.index for r in results] != list(range(len(plan.jobs))):
        raise RuntimeError("simulate: some chunks did not finish")
    offsets, counters, rows = [], {}, {}
    for r in results:   # dicts merged in chunk order keep the in-process key order
        offsets.append(dict(counters))
        for key, n in r.counters.items():
            counters[key] = counters.get(key, 0) + n
        for key, n in r.rows.items():
            rows[key] = rows.get(key, 0) + n
    jobs = [TableJob(table, tuple(str(Path(j.parts) / f"{table}.parquet") for j in plan.jobs),
                     tuple(offsets), str(_out_dir(plan, table).resolve() / f"{table}.parquet"),
                     rows[table])
            for table in sorted(rows, key=rows.get, reverse=True)]   # the longest first
    try:
        if run_tables is None:
            for job in jobs:
                combine_table(job)
        else:
            run_tables(jobs)
    finally:
        shutil.rmtree(plan.parts, ignore_errors=True)
    streams = [_generator(r.stream) for r in results]
    save_meta(state_dir(plan.truth_dir), plan.params, plan.params.months, plan.master, counters,
              streams)
    return write_notes(plan.params, plan.raw_dir, plan.truth_dir, rows)


def deal(jobs: list[TableJob], k: int) -> list[list[TableJob]]:
    """The table jobs in at most ``k`` groups of about equal rows (each job, longest first,
    to the lightest group so far)."""
    groups: list[list[TableJob]] = [[] for _ in range(min(k, len(jobs)))]
    load = [0] * len(groups)
    for job in sorted(jobs, key=lambda j: j.rows, reverse=True):
        g = load.index(min(load))
        groups[g].append(job)
        load[g] += job.rows
    return groups


def _out_dir(plan: Plan, table: str) -> Path:
    if table not in (*RAW_TABLES, *TRUTH_TABLES):
        raise RuntimeError(f"simulate: a chunk wrote an unknown table {table!r}")
    return plan.raw_dir if table in RAW_TABLES else plan.truth_dir


def combine_table(job: TableJob) -> int:
    """The table's row groups, part after part, identifiers shifted; rows written."""
    out = Path(job.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer, rows = None, 0
    try:
        for path, offset in zip(job.parts, job.offsets, strict=True):
            if not Path(path).exists():
                continue
            part = pq.ParquetFile(path)
            if writer is None:
                writer = pq.ParquetWriter(out, part.schema_arrow, compression="zstd")
            for i in range(part.num_row_groups):
                group = renumber(part.read_row_group(i), ID_COLUMNS.get(job.table, ()), offset)
                writer.write_table(group)
                rows += group.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


def _generator(state: dict) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng


def simulate_world_parallel(params: SimulateParams, raw_dir: Path, truth_dir: Path,
                            executor: Executor,
                            on_progress: Callable[[int, int], None] | None = None) -> WorldSummary:
    """``simulate_world`` with the chunks on ``executor`` (a Dask client's ``get_executor()``,
    or any ``concurrent.futures`` executor); the same files for the same parameters."""
    plan = plan_chunks(params, raw_dir, truth_dir)
    total = len(plan.jobs) * params.months
    futures = [executor.submit(run_chunk, job) for job in plan.jobs]
    results = []
    try:
        for future in as_completed(futures):
            results.append(future.result())
            if on_progress:
                on_progress(len(results) * params.months, total)
    except BaseException:
        discard(plan, futures)
        raise
    return finish(plan, results, lambda jobs: [f.result() for f in
                                               [executor.submit(combine_table, j) for j in jobs]])


def discard(plan: Plan, futures) -> None:
    """A failed run: cancel the chunks still to run and remove the parts."""
    for future in futures:
        future.cancel()
    shutil.rmtree(plan.parts, ignore_errors=True)

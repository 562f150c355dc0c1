"""The world's full state between steps, saved under the truth folder (evaluation only).

``cem simulate`` saves it after the last month; ``advance_world`` loads it, steps and saves
it again. One ``.npz`` per chunk (population, dynamic state, identifiers as the source
systems format them) and ``state.json`` (parameters, the month reached, id counters and
the state of every random stream), so that the same plans give the same world whether it
is stepped month by month or several months at once.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from configs.settings import SimulateParams

from . import journal
from .dynamics import WorldState
from .population import Population
from .tables import Chunk

STATE_DIR = "world_state"
STATE_FILE = "state.json"


@dataclass
class ChunkState:
    """One chunk of customers: who they are, where they stand, and their random stream."""

    pop: Population
    st: WorldState
    chunk: Chunk
    rng: np.random.Generator


@dataclass
class SavedWorld:
    params: SimulateParams
    month: int                      # months simulated so far: the index of the next month
    master: np.random.Generator     # draws each new month's regional outages
    counters: dict[str, int]        # id sequences of the exports (tickets, orders, ...)
    chunks: list[ChunkState]

    def last_number(self) -> int:
        """The highest customer number given so far (numbers are never reused)."""
        return max((int(cs.pop.number.max()) for cs in self.chunks if len(cs.pop.number)),
                   default=0)

    def locate(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chunk and local index of each customer number (-1, -1: nobody has it).

        Chunks grow with each stepped month's sign-ups (``arrivals``), so a number's chunk
        is looked up, not computed from ``chunk_customers``."""
        sizes = [len(cs.pop.number) for cs in self.chunks]
        known = np.concatenate([cs.pop.number for cs in self.chunks])
        chunk = np.repeat(np.arange(len(sizes)), sizes)
        local = np.concatenate([np.arange(n) for n in sizes])
        order = np.argsort(known, kind="stable")
        numbers = np.asarray(numbers, np.int64)
        pos = np.minimum(np.searchsorted(known[order], numbers), len(known) - 1)
        found = known[order][pos] == numbers
        return (np.where(found, chunk[order][pos], -1),
                np.where(found, local[order][pos], -1))


def state_dir(truth_dir: Path) -> Path:
    return Path(truth_dir) / STATE_DIR


def save_chunk(folder: Path, index: int, cs: ChunkState) -> None:
    """Write one chunk's arrays (its random stream goes to ``state.json``)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {f"pop.{f.name}": getattr(cs.pop, f.name) for f in fields(Population)}
    arrays |= {f"st.{f.name}": getattr(cs.st, f.name) for f in fields(WorldState)}
    arrays |= {f"id.{name}": getattr(cs.chunk, name) for name in Chunk.IDENTIFIERS}
    arrays["ids"] = cs.chunk.ids.to_numpy(zero_copy_only=False).astype(str)
    np.savez(folder / f"chunk_{index:05d}.npz", **arrays)


def save_meta(folder: Path, params: SimulateParams, month: int, master: np.random.Generator,
              counters: dict[str, int], streams: list[np.random.Generator]) -> None:
    (folder / STATE_FILE).write_text(json.dumps({
        "params": params.model_dump(mode="json"), "month": month, "counters": counters,
        "master": master.bit_generator.state,
        "streams": [g.bit_generator.state for g in streams],
    }, indent=1))


def write_state(folder: Path, world: SavedWorld) -> None:
    """The whole saved state into ``folder`` (made afresh)."""
    shutil.rmtree(folder, ignore_errors=True)
    for i, cs in enumerate(world.chunks):
        save_chunk(folder, i, cs)
    save_meta(folder, world.params, world.month, world.master, world.counters,
              [cs.rng for cs in world.chunks])


def save_world(truth_dir: Path, world: SavedWorld) -> None:
    """Replace the saved state whole: written aside, then swapped in (``journal``)."""
    final = state_dir(truth_dir)
    journal.begin(truth_dir, [final])
    try:
        write_state(journal.aside(final), world)
    except BaseException:
        journal.roll_back_now(truth_dir)
        raise
    journal.commit(truth_dir, [final])


def load_world(truth_dir: Path) -> SavedWorld:
    """The saved state; a step interrupted before its commit is rolled back first."""
    journal.recover(truth_dir)
    folder = state_dir(truth_dir)
    if not (folder / STATE_FILE).is_file():
        raise FileNotFoundError(f"no saved world in {folder}: run `cem simulate` first")
    meta = json.loads((folder / STATE_FILE).read_text())
    chunks = [_load_chunk(folder / f"chunk_{i:05d}.npz", stream)
              for i, stream in enumerate(meta["streams"])]
    return SavedWorld(SimulateParams(**meta["params"]), meta["month"], _generator(meta["master"]),
                      meta["counters"], chunks)


def _load_chunk(path: Path, stream: dict) -> ChunkState:
    with np.load(path) as z:
        pop = Population(**{f.name: z[f"pop.{f.name}"] for f in fields(Population)})
        st = WorldState(**{f.name: z[f"st.{f.name}"] for f in fields(WorldState)})
        chunk = Chunk.restore(pop, z["ids"], {n: z[f"id.{n}"] for n in Chunk.IDENTIFIERS})
    return ChunkState(pop, st, chunk, _generator(stream))


def _generator(state: dict) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng

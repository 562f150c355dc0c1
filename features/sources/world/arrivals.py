"""New customers in stepped months: the history's acquisition process carries on.

In the history (``population.draw_population``) each customer of a chunk joins during it
with probability ``1 - share_existing_at_start``, in a uniform month of the ``months``: in
any one month, each of the chunk's history customers is a sign-up with probability
``(1 - share) / months``. A stepped month draws the same count, Binomial(chunk's history
customers, that probability), from the chunk's own random stream at the start of the month,
and draws the newcomers as the history draws its sign-ups (``population.draw_customers``:
traits, identifiers, consent, rep; ``tables.Chunk``: identifier formats;
``dynamics.initial_state``). They are appended to their chunk's arrays, so from then on
they live, are exported and are saved exactly as history sign-ups are. Numbers carry on
from the highest given so far, chunk after chunk: ids never collide and the same world
steps alike whether one month or several are stepped per call. Design: docs/world.md.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pyarrow as pa

from .dynamics import WorldState, initial_state
from .population import Population, draw_customers, rep_count
from .state import ChunkState, SavedWorld
from .tables import Chunk


def signup_probability(world: SavedWorld) -> float:
    """P(a history customer's slot brings a sign-up in a given month)."""
    params = world.params
    return (1.0 - params.share_existing_at_start) / params.months


def add_arrivals(world: SavedWorld, t: int) -> int:
    """Draw month ``t``'s sign-ups into every chunk; how many joined."""
    params = world.params
    p = signup_probability(world)
    n_reps = rep_count(params.customers, params.customers_per_rep)
    number = world.last_number() + 1
    joined = 0
    for cs in world.chunks:
        history = int((cs.pop.number <= params.customers).sum())
        k = int(cs.rng.binomial(history, p))
        if k == 0:
            continue
        numbers = np.arange(number, number + k, dtype=np.int64)
        pop = draw_customers(cs.rng, numbers, np.full(k, t, np.int32), n_reps)
        grow(cs, pop, Chunk(pop, cs.rng, n_reps), initial_state(pop, cs.rng))
        number += k
        joined += k
    return joined


def grow(cs: ChunkState, pop: Population, chunk: Chunk, st: WorldState) -> None:
    """Append new customers (population, state at sign-up, identifiers) to a chunk."""
    cs.pop = Population(**{f.name: np.concatenate([getattr(cs.pop, f.name), getattr(pop, f.name)])
                           for f in fields(Population)})
    cs.st = WorldState(**{f.name: np.concatenate([getattr(cs.st, f.name), getattr(st, f.name)])
                          for f in fields(WorldState)})
    ids = np.concatenate([_strings(cs.chunk.ids), _strings(chunk.ids)])
    cs.chunk = Chunk.restore(cs.pop, ids, {
        name: np.concatenate([getattr(cs.chunk, name), getattr(chunk, name)])
        for name in Chunk.IDENTIFIERS})


def _strings(ids: pa.Array) -> np.ndarray:
    return ids.to_numpy(zero_copy_only=False).astype(str)

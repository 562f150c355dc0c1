"""`cem simulate`: the built-in world, written as source-system exports plus hidden truth.

Customers are simulated in independent chunks (bounded memory); each chunk runs
month by month through ``month.step_month``. The same parameters and seed give the
same world, byte for byte in content. The world's full state after the last month is
saved under the truth folder (``state``) so that ``step.advance_world`` can carry it on.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from configs.settings import SOURCE_NOTE, SimulateParams

from . import journal
from . import mechanisms as mech
from . import tables as tb
from .campaigns import log_effects_now
from .dynamics import PLAN_USAGE_LIMIT, WorldState, draw_outages, initial_state
from .export import Clock, Sink
from .month import MonthContext, step_month
from .population import REGIONS, draw_population, rep_count
from .state import ChunkState, save_chunk, save_meta, state_dir


@dataclass
class WorldSummary:
    customers: int
    months: int
    rows: dict[str, int]
    raw_dir: str
    truth_dir: str


def simulate_world(
    params: SimulateParams,
    raw_dir: Path,
    truth_dir: Path,
    on_progress: Callable[[int, int], None] | None = None,
) -> WorldSummary:
    """Simulate the world and write ``raw_dir`` (exports) and ``truth_dir`` (hidden truth)."""
    clock = Clock(params.start_date, params.months)
    master, outages, n_reps, starts = world_setup(params)
    sink = Sink(Path(raw_dir), Path(truth_dir))
    saved = state_dir(truth_dir)
    journal.discard(truth_dir)             # a step interrupted in an older world: forget it
    shutil.rmtree(saved, ignore_errors=True)
    total = len(starts) * params.months
    streams = []
    try:
        for c, first in enumerate(starts):
            rng = np.random.default_rng([params.seed, c])
            cs = simulate_chunk(rng, chunk_numbers(params, first), params, clock, outages, n_reps,
                                sink, lambda t, c=c: on_progress and on_progress(
                                    c * params.months + t + 1, total))
            save_chunk(saved, c, cs)
            streams.append(rng)
    finally:
        sink.close()
    save_meta(saved, params, params.months, master, sink.counters, streams)
    return write_notes(params, raw_dir, truth_dir, dict(sink.rows))


def world_setup(params: SimulateParams) -> tuple[np.random.Generator, np.ndarray, int, list[int]]:
    """What every chunk shares: the master stream after the regional outages are drawn,
    the outages, the number of reps, and each chunk's first customer (0-based).

    The cluster path (``parallel``) calls the same function, so both draw the same world.
    """
    master = np.random.default_rng(params.seed)
    outages = draw_outages(master, params.months, len(REGIONS))
    n_reps = rep_count(params.customers, params.customers_per_rep)
    return master, outages, n_reps, list(range(0, params.customers, params.chunk_customers))


def chunk_numbers(params: SimulateParams, first: int) -> np.ndarray:
    """Customer numbers (1-based) of the chunk starting at customer ``first``."""
    return np.arange(first, min(first + params.chunk_customers, params.customers)) + 1


def write_notes(params: SimulateParams, raw_dir: Path, truth_dir: Path,
                rows: dict[str, int]) -> WorldSummary:
    """``world.json`` (truth) and the exports' source note, once every table is written."""
    summary = WorldSummary(params.customers, params.months, rows, str(raw_dir), str(truth_dir))
    (Path(truth_dir) / "world.json").write_text(json.dumps(
        {"params": params.model_dump(mode="json"), **asdict(summary)}, indent=2))
    (Path(raw_dir) / SOURCE_NOTE).write_text(json.dumps(   # what the exports are, for run names
        {"name": f"built-in world, {params.customers:,} customers, seed {params.seed}"}))
    return summary


def simulate_chunk(rng, numbers, params: SimulateParams, clock: Clock, outages, n_reps,
                   sink: Sink, tick) -> ChunkState:
    """One chunk's customers, month by month, into ``sink``; its state at the end."""
    pop = draw_population(rng, numbers, params.months, params.share_existing_at_start, n_reps)
    chunk = tb.Chunk(pop, rng, n_reps)
    st = initial_state(pop, rng)
    for t in range(params.months):
        out = step_month(rng, pop, st, month_context(params, clock, t, outages[t]))
        write_month(sink, clock, chunk, out, t, rng)
        tick(t)
    tb.write_customers(sink, clock, chunk, st)
    write_action_effects(sink, clock, chunk, st)
    return ChunkState(pop, st, chunk, rng)


def month_context(params: SimulateParams, clock: Clock, t: int, outages) -> MonthContext:
    start = clock.start + clock.day0[t]
    wave = params.relationship_wave_every_months
    return MonthContext(
        t=t, day0=int(clock.day0[t]), days=int(clock.day0[t + 1] - clock.day0[t]),
        calendar_month=int(start.astype("datetime64[M]").astype(int) % 12),
        relationship_wave=(t % wave) == (2 % wave), outages=outages,
        campaign_rate=params.campaign_rate, holdout_share=params.holdout_share,
        notice_days=params.notice_days,
    )


def write_month(sink: Sink, clock: Clock, chunk: tb.Chunk, out: dict, t: int, rng) -> None:
    """One chunk-month's records as exports and hidden truth."""
    tb.write_operations(sink, clock, chunk, out, t)
    tb.write_surveys(sink, clock, chunk, out, rng)
    tb.write_complaints(sink, clock, chunk, out["complaints"], rng)
    tb.write_interventions(sink, clock, chunk, out["interventions"])
    tb.write_truth_month(sink, clock, chunk, out["truth_month"], t)


def write_action_effects(sink: Sink, clock: Clock, chunk: tb.Chunk, st: WorldState) -> None:
    """True effect of each action on each open account's 90-day churn, as of the history end.

    Customers under notice (they decided to leave) cannot be kept: their effect is 0.
    """
    pop = chunk.pop
    open_ = (pop.signup_month < len(clock.day0) - 1) & (
        (st.churn_day < 0) | (st.churn_day >= clock.end_day))
    idx = np.flatnonzero(open_)
    ratio = st.usage_prev[idx] / PLAN_USAGE_LIMIT[st.plan[idx]]
    effects = log_effects_now(pop, st, idx, ratio)
    logit = st.last_logit[idx]
    delta = mech.expected_effect(logit, effects, pop.contact_averse[idx])
    p0 = mech.churn_prob_over(logit)
    decided = st.decided_month[idx] >= 0
    delta[decided] = 0.0
    p0 = np.where(decided, 1.0, p0)
    allowed = np.ones_like(delta, bool)
    allowed[:, 2] = st.plan[idx] < 2
    k = len(mech.ACTIONS)
    sink.write("action_effects", {
        "customer_id": chunk.cid(np.repeat(idx, k)),
        "as_of": clock.dates(np.full(len(idx) * k, clock.end_day)),
        "action": pa.array(np.tile(mech.ACTIONS, len(idx))),
        "eligible": pa.array(allowed.ravel()),
        "p_churn_90d_no_action": np.repeat(p0, k),
        "p_churn_90d_with_action": np.repeat(p0, k) + delta.ravel(),
        "true_effect_90d": delta.ravel(),
    })

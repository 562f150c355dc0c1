"""Carry the world on, month by month, answering a product's plan (``cem cycle``).

``advance_world`` loads the state ``cem simulate`` saved, delivers the plan's actions on
the first day of the next month (``plan``: consent, eligibility, each rep's capacity),
draws their outcomes and effects with the programme's mechanisms (``campaigns.assign_actions``),
runs the month as the history ran (``month.step_month``), with the month's new customers
(``arrivals``), and appends its rows to the exports and the hidden truth. Each stepped month
is exported as of its own end, so stepping two months at once or one at a time writes the
same bytes. The exports, the truth and the saved state change together or not at all
(``journal``). Design: docs/world.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from . import journal
from . import mechanisms as mech
from . import tables as tb
from .arrivals import add_arrivals
from .campaigns import assign_actions, log_effects_now
from .dynamics import PLAN_USAGE_LIMIT, draw_outages
from .export import AppendSink, Clock, pick
from .month import programme, step_month
from .plan import DELIVERED, HELD_OUT, NOT_OPEN, STATUS, apply_capacity, eligibility, plan_rows
from .population import REGIONS
from .simulate import month_context, write_action_effects, write_month
from .state import SavedWorld, load_world, state_dir, write_state


@dataclass
class StepSummary:
    step: int            # months stepped since the simulated history ended (1 = the first)
    month: date          # first day of the stepped month
    planned: int
    delivered: int
    held_out: int
    over_capacity: int
    not_allowed: int
    not_open: int
    joined: int = 0      # customers who signed up in the month (``arrivals``)


def advance_world(truth_dir: Path, raw_dir: Path, plan: pd.DataFrame | None = None,
                  months: int = 1, *, capacity: int = 60, programme_runs: bool = False,
                  holdout_share: float = 0.1) -> list[StepSummary]:
    """Step the saved world ``months`` months; ``plan`` is delivered in the first of them.

    ``capacity``: actions one rep delivers in a month. ``programme_runs``: the company's
    own retention programme keeps running beside the plan (off: the plan replaces it).
    ``holdout_share``: the product's hold-out share, the design probability logged with a
    planned row that carries none (plans written before rows had ``assignment_probability``).
    """
    if months < 1:
        raise ValueError(f"months must be at least 1, not {months}")
    world = load_world(truth_dir)          # rolls back a step interrupted before its commit
    params = world.params
    rows = _located(world, plan_rows(plan, world.last_number()))
    sink = AppendSink(Path(raw_dir), Path(truth_dir), world.counters)
    summaries = []
    for m in range(months):
        t = world.month
        clock = Clock(params.start_date, t + 1)
        ctx = month_context(params, clock, t, draw_outages(world.master, 1, len(REGIONS))[0])
        joined = add_arrivals(world, t)
        todo = rows if m == 0 else rows.iloc[:0]
        status, effect, rep = _plan_status(world, todo, t, ctx.day0, capacity)
        for c, cs in enumerate(world.chunks):
            mine = _chunk_rows(world, todo, c, status)
            assign = _assignment(todo["action"].to_numpy()[mine],
                                 todo["control"].to_numpy()[mine], _local(todo, mine),
                                 _logged(todo[mine], holdout_share), programme_runs)
            out = step_month(cs.rng, cs.pop, cs.st, ctx, assign)
            write_month(sink, clock, cs.chunk, out, t, cs.rng)
            write_action_effects(sink, clock, cs.chunk, cs.st)
        _write_delivery(sink, clock, t, todo, status, effect, rep)
        world.month += 1
        summaries.append(_summary(clock, t, t - params.months + 1, status, joined))
    for cs in world.chunks:
        tb.write_customers(sink, clock, cs.chunk, cs.st)
    world.counters = dict(sink.counters)
    _commit(Path(truth_dir), sink, world)
    return summaries


def _commit(truth_dir: Path, sink: AppendSink, world: SavedWorld) -> None:
    """Every table and the state written aside, then swapped in together (``journal``)."""
    targets = [*sink.targets(), state_dir(truth_dir)]
    journal.begin(truth_dir, targets)
    try:
        sink.write_aside()
        write_state(journal.aside(state_dir(truth_dir)), world)
    except BaseException:
        journal.roll_back_now(truth_dir)
        raise
    journal.commit(truth_dir, targets)


def _located(world: SavedWorld, rows: pd.DataFrame) -> pd.DataFrame:
    """Plan rows with their customer's chunk and local index (-1: nobody has the number)."""
    chunk, local = world.locate(rows["number"].to_numpy())
    return rows.assign(chunk=chunk, local=local)


def _local(rows: pd.DataFrame, mine: np.ndarray) -> np.ndarray:
    """Local index (in their chunk) of the customers of the selected rows."""
    return rows["local"].to_numpy()[mine]


def _chunk_rows(world: SavedWorld, rows: pd.DataFrame, c: int, status: np.ndarray) -> np.ndarray:
    """Rows of chunk ``c`` that are delivered or held out, in plan order."""
    return (rows["chunk"].to_numpy() == c) & np.isin(status, (DELIVERED, HELD_OUT))


def _plan_status(world: SavedWorld, rows: pd.DataFrame, t: int, day0: int, capacity: int):
    """Status, true effect (state at assignment; NaN where not open) and rep of every row."""
    n = len(rows)
    status = np.full(n, NOT_OPEN, np.int64)
    effect = np.full(n, np.nan)
    rep = np.full(n, -1, np.int64)
    chunk_of = rows["chunk"].to_numpy()
    action = rows["action"].to_numpy()
    for c, cs in enumerate(world.chunks):
        sel = chunk_of == c
        if not sel.any():
            continue
        cust = _local(rows, sel)
        status[sel] = eligibility(cs.pop, cs.st, cust, action[sel], t, day0)
        rep[sel] = cs.pop.rep[cust]
        known = status[sel] != NOT_OPEN
        effect[np.flatnonzero(sel)[known]] = _true_effects(cs, cust[known], action[sel][known])
    return apply_capacity(status, rows["control"].to_numpy(), rep, capacity), effect, rep


def _true_effects(cs, cust: np.ndarray, action: np.ndarray) -> np.ndarray:
    """What ``assign_actions`` would log as the true effect, for any planned row."""
    ratio = cs.st.usage_prev[cust] / PLAN_USAGE_LIMIT[cs.st.plan[cust]]
    effects = log_effects_now(cs.pop, cs.st, cust, ratio)
    delta = mech.expected_effect(cs.st.last_logit[cust], effects, cs.pop.contact_averse[cust])
    return np.where(cs.st.decided_month[cust] >= 0, 0.0, delta[np.arange(len(cust)), action])


def _logged(rows: pd.DataFrame, holdout_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Log stratum (``product_<arm>``) and design probability of planned rows: the row's own
    ``assignment_probability``, else (older plans) the hold-out share ``h`` or ``1 - h``."""
    arm = rows["arm"].to_numpy(dtype=object) if "arm" in rows else np.full(len(rows), "policy", object)
    stratum = tb.PRODUCT_STRATUM + pd.Index(tb.PRODUCT_ARMS).get_indexer(arm)
    stratum = np.where(stratum < tb.PRODUCT_STRATUM, tb.PRODUCT_STRATUM, stratum)
    control = rows["control"].to_numpy(bool)
    default = np.where(control, holdout_share, 1 - holdout_share)
    prob = rows["probability"].to_numpy(np.float64) if "probability" in rows else default
    return stratum, np.where(np.isnan(prob), default, prob)


def _assignment(action: np.ndarray, control: np.ndarray, cust: np.ndarray,
                logged: tuple[np.ndarray, np.ndarray], programme_runs: bool):
    """The month's ``assign`` hook: the plan's rows first, then the programme if it runs.

    A delivered action replaces one still running; a held-out row changes nothing, and the
    programme leaves it alone in that month. ``logged``: each row's log stratum and design
    probability (``_logged``).
    """
    def assign(rng, pop, st, idx, ctx) -> dict:
        held = cust[control]     # a hold-out leaves whatever action is still running on
        running = st.action_shift[held], st.action_until[held]
        log = assign_actions(rng, pop, st, cust, action, control, ctx.t, ctx.day0)
        expired = running[1] < ctx.t
        st.action_shift[held] = np.where(expired, 0.0, running[0])
        st.action_until[held] = np.maximum(running[1], ctx.t)
        log["stratum"], log["probability"] = logged
        if not programme_runs:
            return log
        other = programme(rng, pop, st, idx, ctx)     # skips customers with a running action
        return {k: np.concatenate([log[k], other[k]]) for k in log}
    return assign


def _write_delivery(sink: AppendSink, clock: Clock, t: int, rows: pd.DataFrame,
                    status: np.ndarray, effect: np.ndarray, rep: np.ndarray) -> None:
    """Hidden truth: what became of each planned row, and its true effect at assignment."""
    n = len(rows)
    action = rows["action"].to_numpy()
    sink.write("plan_delivery", {
        "month": clock.dates(np.full(n, clock.day0[t])),
        "customer_id": pa.array(rows["customer_id"].to_numpy(), pa.string()),
        "action": pick(mech.ACTIONS, action, mask=action < 0),
        "rep_id": pa.array([f"R{r:04d}" for r in rep], pa.string(), mask=rep < 0),
        "control_group": pa.array(rows["control"].to_numpy(), pa.bool_()),
        "arm": pa.array(rows["arm"].to_numpy(dtype=object) if "arm" in rows else ["policy"] * n,
                        pa.string()),
        "status": pick(STATUS, status),
        "true_effect_90d": pa.array(effect, pa.float64()),
    })


def _summary(clock: Clock, t: int, step: int, status: np.ndarray, joined: int) -> StepSummary:
    counts = np.bincount(status, minlength=len(STATUS))
    month = (clock.start + clock.day0[t]).astype(date)
    return StepSummary(step, month, len(status), *map(int, counts), joined)

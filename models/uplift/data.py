"""The uplift training frame: one row per logged retention action, with its features and label.

Rows of the randomized ``interventions`` log get ``treated``, a censoring-aware churn label
and point-in-time ``churn_v1`` features; pure functions, the caller (``models.uplift.train``)
reads files and asks Feast. Design: docs/models.md#the-uplift-training-frame
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

LABEL = "churned_within_horizon"
TREATED = "treated"
ACTION = "action"
STRATUM = "stratum"        # interventions.stratum: the programme's targeting stratum
UNRECORDED = "unrecorded"  # rows whose log gives no stratum: one stratum of their own
PENDING = "pending"        # the row's outcome window is still open (labelled on the days so far)
REQUIRED = ("intervention_id", "customer_id", "action", "assigned_at", "control_group")
# Who may be drawn for an action: feature -> values that rule the customer out.
# The programme never offers an upgrade to a customer already on the top plan.
NOT_ELIGIBLE: dict[str, dict[str, tuple[str, ...]]] = {"plan_upgrade": {"plan": ("premium",)}}


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).dt.as_unit("us")


def check_columns(frame: pd.DataFrame, required, name: str) -> None:
    """Fail at the edge with the table and the missing columns named."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks required columns {missing}")


def churned_between(churn_date: pd.Series, start: pd.Series, horizon_days: int,
                    until: pd.Timestamp | None = None) -> np.ndarray:
    """1 where the date lies in [start's day, start's day + horizon) row by row, else 0 (int64):
    the window of ``models.impact.outcomes.label``, so training and the impact report count
    the same outcome. ``until``: a window still open ends there (the days observed so far)."""
    churn = _utc(churn_date)
    start = _utc(start).dt.floor("D")
    end = start + pd.Timedelta(days=horizon_days)
    if until is not None:
        end = end.clip(upper=until)
    inside = churn.notna() & (churn >= start) & (churn < end)
    return inside.to_numpy(dtype=np.int64)


DECISION, CHURN = "decision", "churn"
NOTICE_COVERAGE = 0.9   # share of the leavers with a notice date for decisions to be the outcome


@dataclass(frozen=True)
class Outcome:
    """What an uplift label counts: ``kind`` (a decision to leave, or an account closing) within
    ``horizon_days`` of the assignment day, and why that kind."""

    kind: str
    horizon_days: int
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} within {self.horizon_days} days"   # the training run's param


def outcome_of(customers: pd.DataFrame, params) -> Outcome:
    """The uplift label's outcome for this export.

    An action changes a customer's decision to leave, not the closing that follows it by the
    notice period. When the CRM records the decision (``notice_date`` for at least
    ``NOTICE_COVERAGE`` of the leavers), the label is a decision within
    ``decision_horizon_days`` (the months an action acts on), complete as soon as those months
    are over; otherwise a churn date within the longer ``horizon_days``. On the built-in
    world that moves an experiment's first use from five months after it to three.
    """
    churned = customers["churn_date"].notna() if "churn_date" in customers else pd.Series(dtype=bool)
    if "notice_date" not in customers:
        return Outcome(CHURN, params.horizon_days, "the export has no notice_date")
    noticed = customers["notice_date"].notna()
    leavers = int(churned.sum())
    share = float((noticed & churned).sum() / leavers) if leavers else float(noticed.any())
    if share < NOTICE_COVERAGE:
        return Outcome(CHURN, params.horizon_days,
                       f"notice_date is recorded for {share:.0%} of the leavers only")
    return Outcome(DECISION, params.decision_horizon_days, "notice_date records the decisions")


def outcome_dates(customers: pd.DataFrame, outcome: Outcome) -> pd.Series:
    """Per customer (index: customer_id as text) the date the outcome counts: the notice date,
    else the churn date, for decisions; the churn date otherwise."""
    ids = customers["customer_id"].astype(str).to_numpy()
    churn = _utc(customers["churn_date"])
    if outcome.kind == DECISION:
        churn = _utc(customers["notice_date"]).where(customers["notice_date"].notna().to_numpy(),
                                                     churn)
    return pd.Series(churn.to_numpy(), index=ids)


def intervention_labels(interventions: pd.DataFrame, customers: pd.DataFrame, as_of: pd.Timestamp,
                        horizon_days: int, outcome: Outcome | None = None,
                        min_follow_up_days: int | None = None) -> pd.DataFrame:
    """Entity rows for Feast: customer_id, event_timestamp (= assigned_at), action, treated,
    label, and ``pending`` (the window is still open).

    ``outcome`` (default: churn dates within ``horizon_days``) says which date counts. The
    window opens on the assignment day: a date is a day, the assignment an instant within it.
    Rows of customers who had already left (or decided to) before the assignment cannot be
    labelled and are dropped (logged). A row whose window is not over at ``as_of`` is dropped
    too, unless ``min_follow_up_days`` have passed: then it is kept as ``pending``, labelled
    on the days observed so far, its ``stratum`` suffixed with its assignment day so that it
    is only ever compared with rows followed as long (the evidence gate's early outcomes,
    docs/prescribe.md#evidence-gate).
    """
    check_columns(interventions, REQUIRED, "interventions")
    check_columns(customers, ("customer_id", "churn_date"), "crm_customers")
    outcome = outcome or Outcome(CHURN, horizon_days, "churn dates asked for")
    iv = interventions.loc[:, list(REQUIRED)].copy()
    iv["assigned_at"] = _utc(iv["assigned_at"])
    churn = iv["customer_id"].astype(str).map(outcome_dates(customers, outcome))
    as_of = pd.Timestamp(as_of).tz_convert("UTC") if pd.Timestamp(as_of).tzinfo else pd.Timestamp(
        as_of, tz="UTC")
    start = iv["assigned_at"].dt.floor("D")
    observed = start + pd.Timedelta(days=outcome.horizon_days) <= as_of
    early = (start + pd.Timedelta(days=min_follow_up_days) <= as_of if min_follow_up_days
             else observed)
    gone = _utc(churn) < start
    if gone.any():
        log.warning("%d interventions assigned after the customer's %s date are dropped",
                    int(gone.sum()), "decision" if outcome.kind == DECISION else "churn")
    keep = (observed | early) & ~gone.to_numpy()
    stratum = (interventions["stratum"].astype(object).fillna(UNRECORDED).astype(str)
               if "stratum" in interventions else pd.Series(UNRECORDED, index=iv.index))
    pending = ~observed.to_numpy()
    stratum = stratum.where(~pending, stratum + "@" + start.dt.strftime("%Y-%m-%d"))
    out = pd.DataFrame({
        "customer_id": iv["customer_id"].astype(str),
        "event_timestamp": iv["assigned_at"],
        "intervention_id": iv["intervention_id"].astype(str),
        ACTION: iv["action"].astype(str),
        TREATED: (~iv["control_group"].astype(bool)).astype(np.int64),
        LABEL: churned_between(churn, iv["assigned_at"], outcome.horizon_days,
                               as_of.floor("D")),
        # the programme's targeting stratum: the hold-out is random within it (evidence gate)
        STRATUM: stratum.to_numpy(),
        PENDING: pending,
    })[keep.to_numpy()]
    return out.sort_values(["event_timestamp", "intervention_id"], kind="stable", ignore_index=True)


def matured_mask(frame: pd.DataFrame) -> np.ndarray:
    """Per row, whether its outcome window is over (every row of a frame without ``pending``)."""
    return ~frame[PENDING].to_numpy(bool) if PENDING in frame else np.ones(len(frame), bool)


def matured(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows whose outcome window is over: what the learners fit and the Qini scores
    (``pending`` rows only add early evidence to the gate)."""
    return frame[matured_mask(frame)]


def drop_unfeatured(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Rows for which Feast found no snapshot (every feature null) carry no information: drop them.

    That happens for actions assigned before the first feature snapshot, or longer
    than the views' TTL after the latest one.
    """
    empty = frame[features].isna().all(axis=1)
    if empty.any():
        log.info("%d intervention rows have no feature snapshot and are left out", int(empty.sum()))
    return frame[~empty.to_numpy()].reset_index(drop=True)


def eligibility(frame: pd.DataFrame, actions: list[str]) -> pd.DataFrame:
    """Boolean frame (rows x actions): could the customer have been drawn for the action?

    A missing value of a ruling feature does not rule the customer out.
    """
    out = pd.DataFrame(True, index=frame.index, columns=list(actions))
    for action, rules in NOT_ELIGIBLE.items():
        if action not in out.columns:
            continue
        for column, values in rules.items():
            if column in frame.columns:
                out[action] &= ~frame[column].astype("object").isin(values).to_numpy()
    return out


def arm_rows(frame: pd.DataFrame, action: str, eligible: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows that identify one action's effect: its treated rows plus every eligible control.

    Why pooling controls is valid: the programme first picks customers (more often
    those in visible trouble), then holds out a random 20 % regardless of anything
    else, then draws the action of the others uniformly among the actions they are
    eligible for. A held-out customer's ``action`` is only the label they would have
    got; they received nothing. So, given the features, a control drawn for action
    *b* is as good a counterfactual for action *a* as one drawn for *a*, provided
    the customer was eligible for *a* (no premium customer stands in for an
    upgrade). The draw's probabilities differ by eligibility set (an eligible set
    of 4 or 5 actions), which the plan feature captures; the learners condition on
    it and the DR-learner uses a propensity per eligibility stratum. Pooling gives
    each action about five times as many controls as its own hold-out.
    """
    eligible = eligibility(frame, [action]) if eligible is None else eligible
    ok = eligible[action].to_numpy(dtype=bool)
    treated = frame[TREATED].to_numpy() == 1
    mine = frame[ACTION].to_numpy() == action
    return frame[ok & ((treated & mine) | ~treated)]


def actions_of(frame: pd.DataFrame) -> list[str]:
    """The action ids in the log, sorted (stable column order for the effect frame)."""
    found = sorted(frame[ACTION].astype(str).unique().tolist())
    if not found:
        raise ValueError("the interventions log holds no action")
    return found


def arm_summary(frame: pd.DataFrame, actions: list[str], z: float = 1.645) -> pd.DataFrame:
    """Per action: treated rows, pooled controls, churn rates and the difference with its 90 % interval.

    The difference (treated minus controls, negative = fewer churners) is the plain
    randomized estimate of the action's average effect on the programme's customers; an
    interval that straddles 0 says the log cannot tell whether the action helps at all.
    """
    elig = eligibility(frame, actions)
    rows = []
    for action in actions:
        arm = arm_rows(frame, action, elig)
        t = (arm[TREATED] == 1).to_numpy()
        y = arm[LABEL].to_numpy(float)
        p1, p0 = _rate(y[t]), _rate(y[~t])
        se = np.sqrt(p1 * (1 - p1) / max(t.sum(), 1) + p0 * (1 - p0) / max((~t).sum(), 1))
        rows.append({"action": action, "treated": int(t.sum()), "controls": int((~t).sum()),
                     "own_controls": int((~t & (arm[ACTION] == action).to_numpy()).sum()),
                     "churn_treated": p1, "churn_control": p0, "difference": p1 - p0,
                     "difference_lo90": p1 - p0 - z * se, "difference_hi90": p1 - p0 + z * se})
    return pd.DataFrame(rows)


def _rate(y: np.ndarray) -> float:
    return float(y.mean()) if len(y) else float("nan")


def build_uplift_frame(labels: pd.DataFrame, featured: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Join-back guard and cleanup after Feast: same rows as ``labels``, features present.

    ``featured`` is ``training_frame(store, labels, CHURN_SERVICE)``; Feast may reorder
    rows, so the frame is re-sorted by assignment time and intervention id.
    """
    check_columns(featured, [*features, "intervention_id", ACTION, TREATED, LABEL], "feature frame")
    if len(featured) != len(labels):
        raise ValueError(f"Feast returned {len(featured)} rows for {len(labels)} intervention rows")
    frame = featured.sort_values(["event_timestamp", "intervention_id"], kind="stable",
                                 ignore_index=True)
    return drop_unfeatured(frame, features)


def uplift_support(clean_dir, recorded: pd.DataFrame | None = None) -> str | None:
    """Why no uplift model can be trained on this data (None when it can): effects are only
    learnt from a programme log with randomized hold-outs."""
    path = Path(clean_dir) / "interventions.parquet"
    logged = pd.read_parquet(path, columns=["control_group"]) if path.is_file() else None
    parts = [f for f in (logged, recorded) if f is not None and len(f)]
    if not parts:
        return "no interventions in the data (no retention programme log)"
    controls = sum(int(pd.Series(f["control_group"]).astype(bool).sum()) for f in parts)
    if controls == 0:
        return "the interventions have no randomized hold-out (control_group) rows"
    return None

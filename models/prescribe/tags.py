"""Dynamic tags per customer, with hysteresis, and an event for every change.

Churn-risk tier, satisfaction class and relationship stage, recomputed every scoring run;
a tag changes only when its score crosses a threshold by a band. The satisfaction class
(stored as ``nps_class``) is on the satisfaction model's scale: detractor / passive /
promoter on NPS (0-10 thresholds from the settings), dissatisfied / neutral / satisfied
on CSAT (1-5 thresholds from the scale's own class cuts). Rules: docs/prescribe.md#dynamic-tags
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from configs.settings import TagParams
from models.frame import numeric_column
from models.nps.scale import CSAT, NPS, SCALES, Scale

RISK_TIERS = ("low", "medium", "high")
NPS_CLASSES = NPS.classes
CLASS_VALUES = tuple(c for scale in SCALES.values() for c in scale.classes)  # nps_class on any scale
STAGES = ("onboarding", "growing", "loyal", "at_risk", "lapsing")
TAGS = {"relationship_stage": STAGES, "churn_risk_tier": RISK_TIERS, "nps_class": CLASS_VALUES}
TAG_COLUMNS = ["customer_id", "relationship_stage", "churn_risk_tier", "nps_class", "p_churn",
               "nps_score", "nps_source", "usage_drop_ratio", "tenure_days"]
EVENT_COLUMNS = ["customer_id", "tag", "old_value", "new_value", "changed_at", "run_id", "cause"]
_ONBOARDING, _GROWING, _LOYAL, _AT_RISK, _LAPSING = range(5)


# --------------------------------------------------------------------------- banded levels

def banded_level(score: np.ndarray, thresholds: np.ndarray, band: float, previous: np.ndarray) -> np.ndarray:
    """Ordered level (0..len(thresholds)) with hysteresis; -1 = unknown.

    Without a previous level: the number of thresholds the score reaches. With one: move
    up only to the level reached with every threshold raised by ``band``, down only to
    the level reached with every threshold lowered by it; otherwise stay.
    """
    s = np.asarray(score, dtype=np.float64)[:, None]
    t = np.asarray(thresholds, dtype=np.float64)[None, :]
    with np.errstate(invalid="ignore"):
        plain, up, down = ((s >= t).sum(1), (s >= t + band).sum(1), (s >= t - band).sum(1))
    kept = np.where(up > previous, up, np.where(down < previous, down, previous))
    level = np.where(previous < 0, plain, kept)
    return np.where(np.isnan(s[:, 0]), previous, level)


def crossed(level: np.ndarray, previous: np.ndarray, thresholds, band: float) -> np.ndarray:
    """The boundary a change passed: threshold + band going up, threshold - band going down."""
    t = np.asarray(thresholds, dtype=np.float64)
    up = level > previous
    idx = np.clip(np.where(up, level - 1, level), 0, len(t) - 1)
    return np.where(up, t[idx] + band, t[idx] - band)


# --------------------------------------------------------------------------- inputs

def _codes(previous: pd.DataFrame | None, ids: pd.Series, column: str,
           levels: tuple[str, ...] | None = None) -> np.ndarray:
    """Previous run's value of a tag per current customer, as a level code (-1: none).

    ``levels``: this run's values in order (the satisfaction class's on the model's
    scale); a known value of another scale gives -1, a fresh assignment.
    """
    if previous is None or len(previous) == 0:
        return np.full(len(ids), -1)
    values = previous.set_index("customer_id")[column].reindex(ids.to_numpy())
    known = values.dropna()
    bad = sorted(set(known.astype(str)) - set(TAGS[column]))
    if bad:
        raise ValueError(f"previous tags: {column}: unknown value {bad[0]!r}")
    return pd.Categorical(values, categories=list(levels or TAGS[column])).codes.astype(np.int64)


def _previous_scores(previous: pd.DataFrame | None, ids: np.ndarray, column: str) -> np.ndarray:
    if previous is None or column not in previous.columns:
        return np.full(len(ids), np.nan)
    return pd.to_numeric(previous.set_index("customer_id")[column].reindex(np.asarray(ids)),
                         errors="coerce").to_numpy(np.float64)


ANSWER_COLUMNS = {NPS.name: "last_nps", CSAT.name: "last_csat"}  # a customer's own latest answer


def class_thresholds(params: TagParams, scale: Scale = NPS) -> tuple[list[float], float]:
    """The satisfaction class's two thresholds and hysteresis band on ``scale``.

    NPS: the settings (0-10). CSAT: halfway below each class cut (2.5 and 3.5, as the
    NPS defaults 6.5 and 8.5 sit below 7 and 9), the band scaled to the 1-5 range. NPS
    thresholds are never applied to a 1-5 score (every customer would be a detractor).
    """
    if scale.name == NPS.name:
        return [params.nps_detractor_below, params.nps_promoter_from], params.nps_band
    span = (scale.high - scale.low) / (NPS.high - NPS.low)
    return [c - 0.5 for c in scale.cuts], params.nps_band * span


def nps_score(current: pd.DataFrame, params: TagParams,
              scale: Scale = NPS) -> tuple[np.ndarray, np.ndarray]:
    """Score the satisfaction class follows: a recent own answer on ``scale``, else the
    prediction (on the model's scale); and its source."""
    n = len(current)
    predicted = _column(current, "nps_pred", n)
    answer = _column(current, ANSWER_COLUMNS[scale.name], n)
    age = _column(current, "days_since_last_survey_answer", n)
    with np.errstate(invalid="ignore"):
        recent = ~np.isnan(answer) & (age <= params.observed_nps_days)
    score = np.where(recent, answer, predicted)
    source = np.where(recent, "answered", np.where(np.isnan(predicted), None, "predicted"))
    return score, source


def _column(frame: pd.DataFrame, name: str, n: int) -> np.ndarray:
    if name not in frame.columns:
        return np.full(n, np.nan)
    return numeric_column(frame[name])


# --------------------------------------------------------------------------- stage

def stage_level(current: pd.DataFrame, risk: np.ndarray, previous: np.ndarray,
                params: TagParams) -> np.ndarray:
    """Relationship stage code per customer (rules and order: docs/prescribe.md#dynamic-tags)."""
    n = len(current)
    ratio, tenure = _column(current, "usage_drop_ratio", n), _column(current, "tenure_days", n)
    was_lapsing = previous == _LAPSING
    limit = np.where(was_lapsing, params.lapsing_usage_ratio + params.usage_band,
                     np.where(previous < 0, params.lapsing_usage_ratio,
                              params.lapsing_usage_ratio - params.usage_band))
    with np.errstate(invalid="ignore"):
        lapsing = np.where(np.isnan(ratio), was_lapsing, ratio < limit)
        stage = np.select([lapsing, risk == 2, tenure < params.onboarding_days, tenure >= params.loyal_days],
                          [_LAPSING, _AT_RISK, _ONBOARDING, _LOYAL], _GROWING)
    return np.where(np.isnan(tenure) & ~lapsing & (risk != 2), previous, stage)


# --------------------------------------------------------------------------- causes
# Object arrays of Python strings, joined element by element: the same text pandas string
# Series give, without their per-operation overhead (a single customer scored by the
# service spent most of its tag time there).

def _fmt(values: np.ndarray, spec: str) -> np.ndarray:
    return np.array([spec.format(v) for v in np.asarray(values, dtype=np.float64).tolist()], dtype=object)


def _text(values) -> np.ndarray:
    return np.asarray(values).astype(object)


def _risk_causes(p, level, prev, prev_p, params: TagParams) -> np.ndarray:
    t = [params.risk_medium, params.risk_high]
    edge = crossed(level, prev, t, params.risk_band)
    tier = np.asarray(RISK_TIERS, dtype=object)[np.maximum(level, 0)]
    moved = _text(np.where(level > prev, " rose above ", " fell below "))
    text = "churn probability " + _fmt(p, "{:.2f}") + moved + _fmt(edge, "{:.2f}") + " (" + tier + " tier)"
    was = _text(np.where(np.isnan(prev_p), "", "; was " + _fmt(prev_p, "{:.2f}")))
    first = "first assignment: churn probability " + _fmt(p, "{:.2f}") + " (" + tier + " tier)"
    return _text(np.where(prev < 0, first, text + was))


def _nps_causes(score, source, level, prev, params: TagParams, scale: Scale = NPS) -> np.ndarray:
    t, band = class_thresholds(params, scale)
    edge = crossed(level, prev, t, band)
    cls = np.asarray(scale.classes, dtype=object)[np.maximum(level, 0)]
    answered = np.asarray(source, dtype=object) == "answered"
    head = _text(np.where(answered, f"{scale.title} answer " + _fmt(score, "{:.0f}"),
                          f"predicted {scale.title} " + _fmt(score, "{:.1f}")))
    moved = _text(np.where(level > prev, " rose above ", " fell below "))
    first = "first assignment: " + head + " (" + cls + ")"
    return _text(np.where(prev < 0, first, head + moved + _fmt(edge, "{:.1f}") + " (" + cls + ")"))


def _stage_causes(ratio: np.ndarray, tenure: np.ndarray, level, prev, p, params: TagParams) -> np.ndarray:
    """Why a customer is in their new stage (and, leaving lapsing, that usage recovered)."""
    days = _fmt(tenure, "{:.0f}")
    pct = _fmt(100 * ratio, "{:.0f}")
    limit = np.where(prev < 0, params.lapsing_usage_ratio, params.lapsing_usage_ratio - params.usage_band)
    reasons = {
        _LAPSING: "last month's usage at " + pct + " % of its recent peak (under "
                  + _fmt(100 * limit, "{:.0f}") + " %)",
        _AT_RISK: "churn probability " + _fmt(p, "{:.2f}") + " in the high tier",
        _ONBOARDING: "customer for " + days + f" days (under {params.onboarding_days})",
        _LOYAL: "customer for " + days + f" days (from {params.loyal_days}), no risk signs",
        _GROWING: "customer for " + days + " days, no risk signs",
    }
    text = _text(np.select([level == k for k in reasons], list(reasons.values()), ""))
    recovered = (prev == _LAPSING) & (level != _LAPSING)
    text = _text(np.where(recovered, "usage recovered to " + pct + " % of its recent peak; " + text, text))
    return _text(np.where(prev < 0, "first assignment: " + text, text))


# --------------------------------------------------------------------------- assembly

def assign_tags(current: pd.DataFrame, previous: pd.DataFrame | None, params: TagParams,
                as_of, run_id: str, scale: Scale = NPS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """This run's tags and the events of every tag that changed since ``previous``.

    ``current``: customer_id, p_churn, tenure_days, usage_drop_ratio, nps_pred and, when
    known, last_nps (last_csat on CSAT) and days_since_last_survey_answer. ``previous``:
    the tags frame of the last run (or None on the first). ``scale``: the satisfaction
    model's scale, which ``nps_pred`` is on. Deterministic: same inputs, same output.
    """
    if "customer_id" not in current.columns or current["customer_id"].duplicated().any():
        raise ValueError("current: needs a unique customer_id column")
    ids = current["customer_id"].reset_index(drop=True)
    frame = current      # read by column name into arrays only: its index does not matter
    n = len(frame)
    p = _column(frame, "p_churn", n)
    ratio, tenure = _column(frame, "usage_drop_ratio", n), _column(frame, "tenure_days", n)
    prev_risk = _codes(previous, ids, "churn_risk_tier")
    risk = banded_level(p, [params.risk_medium, params.risk_high], params.risk_band, prev_risk)
    score, source = nps_score(frame, params, scale)
    prev_nps = _codes(previous, ids, "nps_class", scale.classes)
    thresholds, band = class_thresholds(params, scale)
    nps = banded_level(score, thresholds, band, prev_nps)
    prev_stage = _codes(previous, ids, "relationship_stage")
    stage = stage_level(frame, risk, prev_stage, params)
    tags = pd.DataFrame({
        "customer_id": ids,
        "relationship_stage": _labels(stage, STAGES),
        "churn_risk_tier": _labels(risk, RISK_TIERS),
        "nps_class": _labels(nps, scale.classes),
        "p_churn": p,
        "nps_score": score,
        "nps_source": source,
        "usage_drop_ratio": ratio,
        "tenure_days": tenure,
    })                                  # keys in TAG_COLUMNS order
    changes = [
        ("relationship_stage", stage, prev_stage,
         lambda m: _stage_causes(ratio[m], tenure[m], stage[m], prev_stage[m], p[m], params)),
        ("churn_risk_tier", risk, prev_risk,
         lambda m: _risk_causes(p[m], risk[m], prev_risk[m],
                                _previous_scores(previous, ids.to_numpy()[m], "p_churn"), params)),
        ("nps_class", nps, prev_nps,
         lambda m: _nps_causes(score[m], source[m], nps[m], prev_nps[m], params, scale)),
    ]
    names = {**TAGS, "nps_class": scale.classes}
    parts = [e for e in (_events(ids, names[tag], tag, new, old, cause)
                         for tag, new, old, cause in changes) if e]
    if not parts:
        return tags, events_frame([], [], [], [], as_of, run_id, [])
    return tags, events_frame(*(np.concatenate([e[i] for e in parts]) for i in range(4)), as_of, run_id,
                              np.concatenate([e[4] for e in parts]))


def _labels(level: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    return np.where(level >= 0, np.asarray(names, dtype=object)[np.maximum(level, 0)], None)


def _events(ids: pd.Series, names: tuple[str, ...], tag: str, new: np.ndarray, old: np.ndarray,
            cause) -> tuple | None:
    """(customer ids, tags, old values, new values, causes) of every customer whose tag value
    changed (a first value counts as a change); None when none did. All ``assign_tags``
    changes go into one events frame."""
    m = (new != old) & (new >= 0)
    if not m.any():
        return None
    count = int(m.sum())
    return (ids.to_numpy()[m].astype(object), np.full(count, tag, dtype=object), _labels(old[m], names),
            _labels(new[m], names), np.asarray(cause(m), dtype=object))


def events_frame(customers, tags, old, new, as_of, run_id: str, causes) -> pd.DataFrame:
    """The events table (also when empty, with the same columns and types)."""
    n = len(customers)
    return pd.DataFrame({
        "customer_id": np.asarray(customers, dtype=object),
        "tag": np.asarray(tags, dtype=object),
        "old_value": np.asarray(old, dtype=object),
        "new_value": np.asarray(new, dtype=object),
        "changed_at": pd.Series(pd.Timestamp(as_of), index=range(n)),
        "run_id": np.full(n, run_id, dtype=object),
        "cause": np.asarray(causes, dtype=object),
    })                                  # keys in EVENT_COLUMNS order

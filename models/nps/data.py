"""The invitation frame of the predicted-NPS model: one row per survey invitation.

Every invitee counts, not only those who answered: ``responded`` says whether a kept
(clean) response carries the invitation's id and an answer on the model's scale, and the
answer column (``nps``, or ``csat`` for a company that asks CSAT only:
``models.nps.scale``) holds that answer (NaN for the silent majority). Rows are dated
at ``sent_at``, so the point-in-time join gives each invitation the features known when
it was sent: the answer that follows can never be a feature of its own row (features
only use answers given before the snapshot, and the snapshot precedes the invitation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from feast import FeatureStore

from configs.settings import TrainParams
from features.services import NPS_SERVICE
from features.store import training_frame
from models.nps.scale import AUTO, NPS, SCALES, Scale, answered_counts, choose_scale

SERVICE = NPS_SERVICE
TOUCHPOINTS = ("relationship", "support", "purchase")
FRAME_COLUMNS = ("customer_id", "invitation_id", "survey_id", "touchpoint", "event_timestamp",
                 "responded", "nps", "responded_at")   # "nps": the answer column of the NPS scale


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).dt.as_unit("us")


def invitation_frame(invitations: pd.DataFrame, responses: pd.DataFrame,
                     as_of: pd.Timestamp | None = None, scale: Scale = NPS) -> pd.DataFrame:
    """One row per invitation: who was asked, when, whether they answered and what.

    ``invitations`` and ``responses`` are the clean ``survey_invitations`` and
    ``survey_responses`` tables. With ``as_of``, only invitations sent and responses
    received strictly before it are known (an invitation sent just before the cut-off
    whose answer arrives after it counts as unanswered, as it would have at the time).
    A response without an answer on ``scale`` (a CSAT-only answer to an NPS model) does
    not count as an answer. Columns: customer_id, invitation_id, survey_id, touchpoint,
    event_timestamp (= sent_at, UTC), responded (0/1), the scale's answer column (``nps``
    or ``csat``, float, NaN unless answered), responded_at.
    """
    col = scale.name
    inv = invitations[["invitation_id", "customer_id", "survey_id", "touchpoint", "sent_at"]].copy()
    inv["sent_at"] = _utc(inv["sent_at"])
    resp = responses[["invitation_id", col, "responded_at"]].copy()
    resp[col] = pd.to_numeric(resp[col], errors="coerce").astype(np.float64)
    resp = resp[resp[col].notna()]
    resp["responded_at"] = _utc(resp["responded_at"])
    if as_of is not None:
        cut = pd.Timestamp(as_of)
        cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut.tz_convert("UTC")
        inv = inv[inv["sent_at"] < cut]
        resp = resp[resp["responded_at"] < cut]
    # Clean responses hold one kept answer per invitation; keep the earliest if not.
    resp = resp.sort_values(["responded_at"], kind="stable").drop_duplicates("invitation_id")
    out = inv.merge(resp, on="invitation_id", how="left", validate="one_to_one")
    frame = pd.DataFrame({
        "customer_id": out["customer_id"].astype(str),
        "invitation_id": out["invitation_id"].astype(str),
        "survey_id": out["survey_id"].astype(str),
        "touchpoint": out["touchpoint"].astype(str),
        "event_timestamp": out["sent_at"],
        "responded": out[col].notna().astype(np.int64),
        col: out[col].astype(np.float64),
        "responded_at": out["responded_at"],
    })
    return frame.sort_values(["event_timestamp", "invitation_id"], kind="stable", ignore_index=True)


MIN_WAVES = 2   # one wave to validate on, at least one before it to learn from
MIN_ANSWERS = 20   # answered invitations a model is trained on, at the least


@dataclass(frozen=True)
class Split:
    """The out-of-time check: the model learns from what was known at ``cutoff`` and is
    validated on the invitations of ``valid`` (the latest relationship wave, or, for a
    company with transactional surveys only, the invitations of the last months)."""

    cutoff: pd.Timestamp
    valid: pd.DataFrame
    label: str          # the validation rows' name: a wave id, or the period's dates
    description: str    # how they were chosen, for the report and the run's parameters
    by_waves: bool


def period_start(frame: pd.DataFrame, months: int) -> pd.Timestamp:
    """Start of the last ``months`` months of invitations (the validation period)."""
    return frame["event_timestamp"].max().floor("D") + pd.Timedelta(days=1) - pd.DateOffset(months=months)


def period_labels(frame: pd.DataFrame, months: int) -> pd.Series:
    """A label per invitation: the ``months``-month period it was sent in, counted back
    from the end of the data so that the last period is the validation period."""
    end = frame["event_timestamp"].max().floor("D") + pd.Timedelta(days=1)
    start = period_start(frame, months)
    labels = pd.Series("", index=frame.index, dtype=object)
    while (frame["event_timestamp"] < end).any():
        inside = (frame["event_timestamp"] >= start) & (frame["event_timestamp"] < end)
        first = max(start, frame["event_timestamp"].min().floor("D"))
        last = end - pd.Timedelta(days=1)
        labels[inside] = f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
        end, start = start, start - pd.DateOffset(months=months)
    return labels


def validation_split(frame: pd.DataFrame, months: int) -> Split:
    """The latest relationship wave when there are two or more; else, split by time, the
    last ``months`` months of invitations (transactional surveys only)."""
    waves = relationship_waves(frame)
    if len(waves) >= MIN_WAVES:
        valid = frame[frame["survey_id"] == waves[-1]]
        return Split(valid["event_timestamp"].min(), valid, waves[-1],
                     "latest relationship wave", True)
    cutoff = period_start(frame, months)
    valid = frame[frame["event_timestamp"] >= cutoff]
    return Split(cutoff, valid, period_labels(frame, months)[valid.index[0]],
                 f"last {months} months of transactional surveys", False)


def split_support(frame: pd.DataFrame, split: Split, name: str) -> str | None:
    """Why ``split`` cannot train and validate the model, or None."""
    valid = int(split.valid["responded"].sum())
    before = int(known_at(frame, split.cutoff)["responded"].sum())
    if split.by_waves and not valid:
        return f"the latest relationship wave {split.label} has no {name} answers to validate on"
    if not split.by_waves and valid < MIN_ANSWERS:
        return (f"{valid} {name} answers in the validation period ({split.description}, "
                f"{split.label}); the model needs at least {MIN_ANSWERS}")
    if before < MIN_ANSWERS:
        where = ("the latest relationship wave" if split.by_waves
                 else f"the validation period ({split.description})")
        return f"{before} {name} answers before {where}; the model needs at least {MIN_ANSWERS}"
    return None


def nps_support(clean_dir: Path, setting: str = AUTO, months: int | None = None) -> str | None:
    """Why the predicted-satisfaction model cannot be trained on this data, or None when it
    can (``setting``: ``train.satisfaction_scale``; ``months``:
    ``train.satisfaction_validation_months``, the validation period without waves)."""
    clean_dir = Path(clean_dir)
    for table in ("survey_invitations", "survey_responses"):
        if not (clean_dir / f"{table}.parquet").is_file():
            return f"no {table} table in the data"
    scale = load_scale(clean_dir, setting)
    frame = load_invitation_frame(clean_dir, scale=scale)
    if frame.empty:
        return "no survey invitations in the data"
    if not frame["responded"].any():
        return f"no {scale.name.upper()} answers linked to an invitation (satisfaction scale {scale.name})"
    months = months or TrainParams.model_fields["satisfaction_validation_months"].default
    return split_support(frame, validation_split(frame, months), scale.name.upper())


def _responses(clean_dir: Path) -> pd.DataFrame:
    """The clean responses' link, time and answer columns (scores a table lacks read as empty)."""
    path = Path(clean_dir) / "survey_responses.parquet"
    have = set(pq.read_schema(path).names)
    cols = ["invitation_id", "responded_at", *[c for c in SCALES if c in have]]
    resp = pd.read_parquet(path, columns=cols)
    return resp.assign(**{c: np.nan for c in SCALES if c not in have})


def load_scale(clean_dir: Path, setting: str = AUTO) -> Scale:
    """The scale the model predicts on this data (``scale.choose_scale``)."""
    return choose_scale(_responses(clean_dir), setting)


def scale_counts(clean_dir: Path) -> dict[str, int]:
    """Responses carrying an answer on each scale (logged beside the chosen scale)."""
    return answered_counts(_responses(clean_dir))


def load_invitation_frame(clean_dir: Path, as_of: pd.Timestamp | None = None,
                          scale: Scale | None = None) -> pd.DataFrame:
    """``invitation_frame`` over the clean Parquet tables in ``clean_dir``, on ``scale``
    (by default the one ``choose_scale`` picks from the responses)."""
    clean_dir = Path(clean_dir)
    inv = pd.read_parquet(clean_dir / "survey_invitations.parquet",
                          columns=["invitation_id", "customer_id", "survey_id", "touchpoint",
                                   "sent_at"])
    resp = _responses(clean_dir)
    return invitation_frame(inv, resp, as_of, scale or choose_scale(resp))


def with_features(store: FeatureStore, frame: pd.DataFrame) -> pd.DataFrame:
    """The invitation frame joined to the ``nps_v1`` features as of each ``sent_at``.

    Row order and index follow ``frame`` (the join itself does not promise an order).
    """
    feats = training_frame(store, frame[["customer_id", "event_timestamp", "invitation_id"]],
                           SERVICE)
    feats = feats.drop(columns=["customer_id", "event_timestamp"])
    out = frame.reset_index(drop=True).merge(feats, on="invitation_id", how="left",
                                             validate="one_to_one")
    out.index = frame.index
    return out


def known_at(frame: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The invitation frame as it was known at ``cutoff``: invitations sent before it, and
    only the answers received before it (later answers are not known yet: unanswered)."""
    cut = pd.Timestamp(cutoff)
    cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut.tz_convert("UTC")
    out = frame[frame["event_timestamp"] < cut].copy()
    late = (out["responded"] == 1) & ~(out["responded_at"] < cut)
    out.loc[late, "responded"] = 0
    for col in SCALES:
        if col in out.columns:
            out.loc[late, col] = np.nan
    out.loc[late, "responded_at"] = pd.NaT
    return out


def relationship_waves(frame: pd.DataFrame) -> list[str]:
    """Survey ids of the relationship waves in ``frame``, oldest first."""
    rel = frame[frame["touchpoint"] == "relationship"]
    first = rel.groupby("survey_id")["event_timestamp"].min().sort_values()
    return first.index.tolist()

"""The invitation frame of the predicted-NPS model: one row per survey invitation.

Every invitee counts, not only those who answered: ``responded`` says whether a kept
(clean) response carries the invitation's id and ``nps`` is that answer (NaN for the
silent majority). Rows are dated at ``sent_at``, so the point-in-time join gives each
invitation the features known when it was sent: the answer that follows can never be
a feature of its own row (features only use answers given before the snapshot, and the
snapshot precedes the invitation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from feast import FeatureStore

from features.services import NPS_SERVICE
from features.store import training_frame

SERVICE = NPS_SERVICE
TOUCHPOINTS = ("relationship", "support", "purchase")
FRAME_COLUMNS = ("customer_id", "invitation_id", "survey_id", "touchpoint", "event_timestamp",
                 "responded", "nps", "responded_at")


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).dt.as_unit("us")


def invitation_frame(invitations: pd.DataFrame, responses: pd.DataFrame,
                     as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per invitation: who was asked, when, whether they answered and what.

    ``invitations`` and ``responses`` are the clean ``survey_invitations`` and
    ``survey_responses`` tables. With ``as_of``, only invitations sent and responses
    received strictly before it are known (an invitation sent just before the cut-off
    whose answer arrives after it counts as unanswered, as it would have at the time).
    Columns: customer_id, invitation_id, survey_id, touchpoint, event_timestamp
    (= sent_at, UTC), responded (0/1), nps (float, NaN unless answered), responded_at.
    """
    inv = invitations[["invitation_id", "customer_id", "survey_id", "touchpoint", "sent_at"]].copy()
    inv["sent_at"] = _utc(inv["sent_at"])
    resp = responses[["invitation_id", "nps", "responded_at"]].copy()
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
        "responded": out["nps"].notna().astype(np.int64),
        "nps": pd.to_numeric(out["nps"], errors="coerce").astype(np.float64),
        "responded_at": out["responded_at"],
    })
    return frame.sort_values(["event_timestamp", "invitation_id"], kind="stable", ignore_index=True)


MIN_WAVES = 2   # one wave to validate on, at least one before it to learn from


def nps_support(clean_dir: Path) -> str | None:
    """Why the predicted-NPS model cannot be trained on this data, or None when it can."""
    clean_dir = Path(clean_dir)
    for table in ("survey_invitations", "survey_responses"):
        if not (clean_dir / f"{table}.parquet").is_file():
            return f"no {table} table in the data"
    frame = load_invitation_frame(clean_dir)
    if frame.empty:
        return "no survey invitations in the data"
    if not frame["responded"].any():
        return "no survey answers linked to an invitation"
    waves = relationship_waves(frame)
    if len(waves) < MIN_WAVES:
        return (f"{len(waves)} relationship survey wave(s) (touchpoint 'relationship'); the model "
                f"needs at least {MIN_WAVES}: one to validate on and one before it")
    return None


def load_invitation_frame(clean_dir: Path, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """``invitation_frame`` over the clean Parquet tables in ``clean_dir``."""
    clean_dir = Path(clean_dir)
    inv = pd.read_parquet(clean_dir / "survey_invitations.parquet",
                          columns=["invitation_id", "customer_id", "survey_id", "touchpoint",
                                   "sent_at"])
    resp = pd.read_parquet(clean_dir / "survey_responses.parquet",
                           columns=["invitation_id", "nps", "responded_at"])
    return invitation_frame(inv, resp, as_of)


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
    out.loc[late, "nps"] = np.nan
    out.loc[late, "responded_at"] = pd.NaT
    return out


def relationship_waves(frame: pd.DataFrame) -> list[str]:
    """Survey ids of the relationship waves in ``frame``, oldest first."""
    rel = frame[frame["touchpoint"] == "relationship"]
    first = rel.groupby("survey_id")["event_timestamp"].min().sort_values()
    return first.index.tolist()

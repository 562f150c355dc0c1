"""``customer_x``: experience features (surveys, engagement, complaints, comments).

Only answers given strictly before the snapshot are features, so the answer that
serves as a predicted-NPS label (dated at ``responded_at``) is never part of the
feature row it is joined to (that row's snapshot is at or before ``responded_at``).
Who answers is not random (happy, engaged customers answer more), so the
engagement features (invitations, responses, response rate, ``ever_responded``)
matter as much as the scores; a customer who never answered has NaN scores, not 0.
Each score (NPS, CSAT, effort) is read from the answers that carry it: a company that
runs CSAT surveys only gets NaN NPS features and its CSAT features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .events import Events
from .inputs import Clean, ns
from .operations import categorical
from .schema import DRIVERS
from .text import score_comments


class Experience:
    """X-data sources indexed for point-in-time lookups."""

    def __init__(self, clean: Clean):
        n, t = clean.n, clean.tables
        resp = t["survey_responses"]
        self.touchpoints = resp["touchpoint"].cat.categories
        self.responses = Events.from_frame(resp, resp["responded_at"], n,
                                           touchpoint=resp["touchpoint"].cat.codes.to_numpy())
        self.nps = _answered(resp, "nps", n)
        self.csat = _answered(resp, "csat", n)
        self.effort = _answered(resp, "effort", n)
        inv = t["survey_invitations"]
        never = np.iinfo(np.int64).max
        answered = np.where(inv["answered_at"].isna(), never,
                            ns(inv["answered_at"].fillna(pd.Timestamp(0, tz="UTC"))))
        self.invitations = Events.from_frame(inv, inv["sent_at"], n, answered=answered)
        comp = t["complaints"]
        self.complaints = Events.from_frame(comp, comp["received_at"], n,
                                            severity=comp["severity"].to_numpy(float))
        said = resp[resp["comment"].notna()]
        scores = score_comments(said["comment"].reset_index(drop=True))
        self.comments = Events.from_frame(
            said, said["responded_at"], n,
            **{c: scores[c].to_numpy(float) for c in scores.columns})

    def at(self, snapshot: pd.Timestamp) -> dict[str, np.ndarray]:
        """Every customer_x feature for every customer code, as of ``snapshot``."""
        t = snapshot.value
        return self._scores(t) | self._engagement(t) | self._voice(t)

    def _scores(self, t: int) -> dict[str, np.ndarray]:
        s = self.nps
        last = s.latest("value", t)
        return {
            "last_nps": last,
            "last_csat": self.csat.latest("value", t),
            "last_effort": self.effort.latest("value", t),
            "nps_trend": last - s.latest("value", t, back=1),
            "mean_nps_365d": s.mean("value", t, 365),
            "min_nps_365d": s.reduce("value", t, 365, np.minimum),
            "last_touchpoint": categorical(self.responses.latest("touchpoint", t), self.touchpoints),
        }

    def _engagement(self, t: int) -> dict[str, np.ndarray]:
        """Who answers at all: invitations, answers and the share of invitations answered."""
        inv = self.invitations
        invited = inv.count(t, 365)
        answered = inv.reduce(inv.aligned("answered") < t, t, 365, empty=0)
        return {
            "days_since_last_survey_answer": self.responses.days_since_latest(t),
            "days_since_last_invitation": inv.days_since_latest(t),
            "invitations_365d": invited,
            "responses_365d": self.responses.count(t, 365),
            "response_rate_365d": np.where(invited > 0, answered / np.maximum(invited, 1), np.nan),
            "ever_responded": (self.responses.count(t) > 0).astype(np.int64),
        }

    def _voice(self, t: int) -> dict[str, np.ndarray]:
        """Complaints and what the comments say (tone, and which drivers they name)."""
        c = self.comments
        out = {
            "complaints_90d": self.complaints.count(t, 90),
            "complaint_max_severity_90d": self.complaints.reduce(
                "severity", t, 90, np.maximum, empty=0).astype(np.int64),
            "comments_180d": c.count(t, 180),
            "sentiment_90d": c.mean("sentiment", t, 90),
            "sentiment_180d": c.mean("sentiment", t, 180),
        }
        for d in DRIVERS:
            out[f"topic_{d}_180d"] = c.mean(f"topic_{d}", t, 180)
        return out


def _answered(resp: pd.DataFrame, col: str, n: int) -> Events:
    """The responses that carry ``col``: each score is an optional question (a CSAT-only
    survey has no NPS answers, so its NPS features are NaN, never a crash)."""
    values = pd.to_numeric(resp[col], errors="coerce").astype(np.float64)
    rows = resp[values.notna().to_numpy()]
    return Events.from_frame(rows, rows["responded_at"], n, value=values[values.notna()].to_numpy())

"""Contact consent: an opted-out or unknown channel is never planned; a consent the
export does not record is not checked; customers under notice leave the candidates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.prescribe.actions import catalogue_from_entries
from models.prescribe.consent import checked_channels, planning_candidates, reachable

CATALOGUE = catalogue_from_entries([
    {"id": i, "label": i, "channel": c, "cost": 5, "handling_minutes": 5, "addresses": ["support"]}
    for i, c in (("call", "call"), ("mail", "email"), ("text", "sms"))])


def _candidates(customers):
    ids = CATALOGUE.ids
    return pd.DataFrame({"customer_id": np.repeat(customers, len(ids)),
                         "action_id": pd.Categorical(np.tile(ids, len(customers)), categories=ids),
                         "eligible": True})


def test_a_channel_is_used_only_where_consent_is_recorded():
    cand = _candidates(["A", "B", "C"])
    consent = pd.DataFrame({"phone_opt_out": pd.array([False, True, None], dtype="boolean"),
                            "email_opt_out": [True, False, False]}, index=["A", "B", "C"])
    ok = reachable(cand, consent, CATALOGUE).reshape(3, 3)
    #            call   mail   text (sms: no consent flag in the contract)
    assert ok.tolist() == [[True, False, True],
                           [False, True, True],
                           [False, True, True]]     # unknown phone consent: no call


def test_a_consent_the_export_does_not_record_is_not_checked():
    cand = _candidates(["A", "B"])
    consent = pd.DataFrame({"email_opt_out": [True, False]}, index=["A", "B"])
    ok = reachable(cand, consent, CATALOGUE).reshape(2, 3)
    assert ok[:, 0].all()                            # no phone_opt_out column: calls allowed
    assert ok[:, 1].tolist() == [False, True]
    assert checked_channels(consent) == ["email"]
    assert checked_channels(pd.DataFrame(index=["A"])) == []


def test_planning_candidates_drop_notices_and_count_what_consent_blocked():
    cand = _candidates(["A", "B", "C"])
    cand.loc[(cand["customer_id"] == "A") & (cand["action_id"] == "mail"), "eligible"] = False
    consent = pd.DataFrame({"phone_opt_out": [True, True, False],
                            "email_opt_out": [True, False, False]}, index=["A", "B", "C"])
    out, blocked = planning_candidates(cand, pd.Index(["C"]), consent, CATALOGUE)
    assert set(out["customer_id"]) == {"A", "B"}
    # A: call blocked (mail was not eligible anyway, so not counted); B: call blocked
    assert blocked == 2
    assert out.loc[out["action_id"] == "call", "eligible"].eq(False).all()
    assert out.loc[out["action_id"] == "text", "eligible"].all()
    assert len(cand) == 9                             # the input is not modified

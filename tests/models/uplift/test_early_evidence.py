"""Early outcomes for the evidence gate: actions whose outcome window is still open join the
gate's evidence, labelled on the days observed so far and compared only with rows followed as
long; the learners never fit them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.frame import FrameSpec
from models.uplift.data import (
    DECISION,
    LABEL,
    PENDING,
    STRATUM,
    TREATED,
    Outcome,
    intervention_labels,
    matured,
)
from models.uplift.evidence import policy_evidence
from models.uplift.model import UpliftParams
from models.uplift.selection import out_of_fold

DAY = pd.Timedelta(days=1)
START = pd.Timestamp("2025-01-01", tz="UTC")
AS_OF = pd.Timestamp("2025-05-01", tz="UTC")        # 120 days on
OUTCOME = Outcome(DECISION, 90, "notice dates")


def _log(rows):
    return pd.DataFrame(rows, columns=["intervention_id", "customer_id", "action", "assigned_at",
                                       "control_group", "stratum"])


def test_open_windows_are_kept_from_the_follow_up_on_and_labelled_on_the_days_so_far():
    iv = _log([("I1", "A", "call", START + 0.4 * DAY, False, "s"),           # window over
               ("I2", "B", "call", START + 59.4 * DAY, False, "s"),          # 61 days followed
               ("I3", "C", "call", START + 59.4 * DAY, True, "s"),           # decides after as_of
               ("I4", "D", "call", START + 100.4 * DAY, False, "s")])        # 20 days: too early
    crm = pd.DataFrame({"customer_id": list("ABCD"),
                        "notice_date": [START + 89 * DAY, START + 70 * DAY, AS_OF + 3 * DAY,
                                        pd.NaT],
                        "churn_date": [pd.NaT] * 4})
    out = intervention_labels(iv, crm, AS_OF, 90, OUTCOME, min_follow_up_days=30)
    out = out.set_index("intervention_id")
    assert list(out.index) == ["I1", "I2", "I3"]
    assert out[LABEL].to_dict() == {"I1": 1, "I2": 1, "I3": 0}
    assert out[PENDING].to_dict() == {"I1": False, "I2": True, "I3": True}
    # pending rows are compared only within their assignment day
    assert out[STRATUM].to_dict() == {"I1": "s", "I2": "s@2025-03-01", "I3": "s@2025-03-01"}
    assert list(matured(out).index) == ["I1"]
    # without the option, only the matured row
    assert list(intervention_labels(iv, crm, AS_OF, 90, OUTCOME)["intervention_id"]) == ["I1"]


def test_rows_followed_unequally_are_never_compared():
    """Treated customers assigned long ago have had more time to decide than hold-outs
    assigned last month: pooled in one stratum, an action that does nothing looks harmful.
    Suffixing the stratum with the assignment day compares like with like."""
    rng = np.random.default_rng(0)
    rows, notices = [], []
    for i in range(4000):
        early = i % 2 == 0                         # half assigned 100 days ago, half 40
        start = START + (0 if early else 60) * DAY + 0.4 * DAY
        held = rng.random() < (0.1 if early else 0.9)   # the early cohort is mostly treated
        rows.append((f"I{i}", f"C{i}", "call", start, held, "s"))
        day = rng.integers(0, 90)                  # no effect: decisions uniform over 90 days
        notices.append(start.floor("D") + day * DAY if rng.random() < 0.3 else pd.NaT)
    crm = pd.DataFrame({"customer_id": [f"C{i}" for i in range(4000)], "notice_date": notices,
                        "churn_date": [pd.NaT] * 4000})
    frame = intervention_labels(_log(rows), crm, AS_OF, 90, OUTCOME, min_follow_up_days=30)
    assert frame[PENDING].sum() == 2000            # the late cohort's windows are open

    def value(f):
        effects = pd.DataFrame({"call": np.full(len(f), -0.5)})   # the rule acts on every row
        table = policy_evidence(f, effects, None, np.full(len(f), 0.5),
                                np.full(len(f), 100.0), {"call": 0.0}, n_boot=50)
        return table.loc["call", "value_per_action"]

    assert abs(value(frame)) < 4                                      # no effect, none found
    pooled = frame.assign(**{STRATUM: "s"})
    assert value(pooled) < -4                  # what comparing unequal follow-up would say


def _synthetic(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"x1": rng.random(n), "x2": rng.random(n)})
    treated = (rng.random(n) < 0.5).astype(int)
    y = (rng.random(n) < 0.3 - 0.2 * treated * (x["x1"] > 0.5)).astype(int)
    return x.assign(customer_id=[f"C{i}" for i in range(n)], action="call", **{TREATED: treated,
                    LABEL: y, PENDING: rng.random(n) < 0.3})


def test_out_of_fold_estimates_pending_rows_without_fitting_them():
    frame = _synthetic(3000, 1)
    params = UpliftParams(n_estimators=40, risk_n_estimators=20, cv_folds=2, bootstrap=20)
    spec = FrameSpec(["x1", "x2"], {})
    first = out_of_fold(frame, ["x1", "x2"], ("t",), params, folds=2, spec=spec)
    flipped = frame.assign(**{LABEL: np.where(frame[PENDING], 1 - frame[LABEL], frame[LABEL])})
    second = out_of_fold(flipped, ["x1", "x2"], ("t",), params, folds=2, spec=spec)
    pd.testing.assert_frame_equal(first.effects["t"], second.effects["t"])
    assert first.effects["t"].notna().all().all()      # pending rows get estimates too
    ripe = ~frame[PENDING].to_numpy()
    assert len(first.rows(ripe).effects["t"]) == ripe.sum()

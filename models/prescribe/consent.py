"""Contact consent: who may be reached on which channel, from the CRM's opt-out flags.

A call to a customer who asked not to be called is not a retention action but a breach
(do-not-call and e-mail marketing consent are legal duties), and the customers who opt
out are the ones a contact annoys most. So consent is a hard rule applied before any
value is weighed, like the save desk's claim on customers under notice: the plan, and
every baseline it is compared with, only sees pairs that may be delivered.

Semantics (docs/prescribe.md#contact-consent): a channel with a consent flag in the
contract may be used only where the flag is recorded as false; an empty flag (no phone
or e-mail on file, or consent unknown) does not allow the contact. When the export has
no such column at all, the company does not record that consent and the channel is
not checked (the run's summary says which channels were checked).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.prescribe.actions import Catalogue

#: Catalogue channel -> the crm_customers flag that withdraws consent for it.
CHANNEL_CONSENT = {"call": "phone_opt_out", "email": "email_opt_out"}
CONSENT_COLUMNS = tuple(dict.fromkeys(CHANNEL_CONSENT.values()))


def reachable(candidates: pd.DataFrame, consent: pd.DataFrame, catalogue: Catalogue) -> np.ndarray:
    """Per candidate row: may the action's channel be used for the customer?

    ``consent``: index customer_id, the ``CONSENT_COLUMNS`` the export records (a missing
    column means the consent is not recorded: that channel is not checked).
    """
    ok = np.ones(len(candidates), dtype=bool)
    if not len(candidates):
        return ok
    channel = pd.Series({a.id: a.channel for a in catalogue})
    row_channel = candidates["action_id"].astype(str).map(channel).to_numpy()
    for chan, column in CHANNEL_CONSENT.items():
        if column not in consent.columns:
            continue
        rows = row_channel == chan
        if not rows.any():
            continue
        flag = candidates.loc[rows, "customer_id"].map(consent[column])
        # empty (unknown, no contact on file) and True (opted out): no
        ok[rows] = flag.eq(False).fillna(False).to_numpy(dtype=bool)
    return ok


def checked_channels(consent: pd.DataFrame) -> list[str]:
    """The catalogue channels whose consent the export records."""
    return [chan for chan, column in CHANNEL_CONSENT.items() if column in consent.columns]


def planning_candidates(candidates: pd.DataFrame, notices: pd.Index, consent: pd.DataFrame,
                        catalogue: Catalogue) -> tuple[pd.DataFrame, int]:
    """The candidates a plan may choose from: customers under notice removed (a save-desk
    case), and pairs without consent for the channel made ineligible. Returns them and
    how many otherwise eligible pairs consent blocked."""
    out = candidates[~candidates["customer_id"].isin(notices)]
    allowed = reachable(out, consent, catalogue)
    eligible = out["eligible"].to_numpy(bool)
    blocked = int((eligible & ~allowed).sum())
    return out.assign(eligible=eligible & allowed), blocked

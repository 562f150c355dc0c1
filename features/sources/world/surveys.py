"""X data: survey invitations, the answers customers would give, who answers, and how
the survey tool delivers responses (by channel identifier, sometimes twice, sometimes
with a typo); plus complaints keyed by a contact identifier.
"""

from __future__ import annotations

import numpy as np

from . import mechanisms as mech
from .population import Population
from .text import compose_comments

TOUCHPOINTS = np.array(["relationship", "support", "purchase"])
CHANNELS = np.array(["email", "sms", "app"])
COMMENT_RATE = 0.55
DUPLICATE_RATE = 0.03
TYPO_RATE = 0.01


def pick_channel(rng, pop: Population, cust: np.ndarray) -> np.ndarray:
    """Invitation channel: e-mail mostly, SMS without e-mail, the app for some app users."""
    ch = np.where(pop.has_email[cust], 0, np.where(pop.has_phone[cust], 1, 2))
    ch = np.where(pop.has_app[cust] & (rng.random(len(cust)) < 0.3), 2, ch)
    ch = np.where(~pop.has_email[cust] & ~pop.has_phone[cust] & ~pop.has_app[cust], -1, ch)
    return ch


def invitations(rng, pop, cust, touchpoint: int, sent_day, trigger, sat, penalty):
    """Invitations with the hidden would-be answer and whether the customer responds."""
    channel = pick_channel(rng, pop, cust)
    keep = channel >= 0
    cust, sent_day, trigger, sat, penalty, channel = (
        a[keep] for a in (cust, sent_day, trigger, sat, penalty, channel))
    n = len(cust)
    nps_true = mech.would_be_nps(sat, rng.standard_normal(n), penalty)
    p = mech.sigmoid(mech.response_logit(np.full(n, touchpoint), pop.engagement[cust], sat))
    return {
        "cust": cust, "touchpoint": np.full(n, touchpoint, np.int8), "channel": channel,
        "sent_day": sent_day, "trigger": trigger, "nps_true": nps_true,
        "responded": rng.random(n) < p, "sat": sat,
    }


def responses(rng, inv: dict, drivers: np.ndarray, slow: np.ndarray, unresolved: np.ndarray):
    """Answers of the invitees who respond (scores, comment) before channel duplication."""
    r = np.flatnonzero(inv["responded"])
    n = len(r)
    nps = inv["nps_true"][r]
    tp = inv["touchpoint"][r]
    csat = np.clip(np.rint(1 + nps / 2.5 + rng.normal(0, 0.6, n)), 1, 5)
    effort = np.clip(np.rint(2 + 0.25 * slow[r] + 1.5 * unresolved[r] + rng.normal(0, 1, n)), 1, 7)
    driver = np.where(drivers[r].max(axis=1) > 0.3, drivers[r].argmax(axis=1), -1)
    driver = np.where(tp == 1, np.where(slow[r] + unresolved[r] > 0, 0, driver), driver)
    comment = compose_comments(rng, nps, driver, mech.DRIVERS)
    comment[rng.random(n) >= COMMENT_RATE] = None
    return {
        "inv": r, "nps": nps,
        "csat": np.where(tp > 0, csat, np.nan), "effort": np.where(tp == 1, effort, np.nan),
        "comment": comment,
        "responded_day": inv["sent_day"][r] + rng.exponential(1.5, n) + 0.01,
        "channel": inv["channel"][r],
    }


def duplicate_across_channels(rng, pop: Population, cust: np.ndarray, resp: dict) -> dict:
    """Some customers answer one invitation a second time, on another channel if they have one."""
    dup = np.flatnonzero(rng.random(len(resp["nps"])) < DUPLICATE_RATE)
    c = cust[resp["inv"][dup]]
    has = np.stack([pop.has_email[c], pop.has_phone[c], pop.has_app[c]], axis=1)
    has[np.arange(len(dup)), resp["channel"][dup]] = False
    alt = np.where(has.any(axis=1), has.argmax(axis=1), resp["channel"][dup])
    nps = np.clip(resp["nps"][dup] + rng.choice([-1, 0, 0, 1], len(dup)), 0, 10)
    extra = {k: v[dup] for k, v in resp.items()}
    extra.update(channel=alt, nps=nps, responded_day=resp["responded_day"][dup]
                 + rng.uniform(0.05, 3.0, len(dup)))
    return {k: np.concatenate([resp[k], extra[k]]) for k in resp}


def complaints(rng, pop: Population, idx, sat, n_unresolved, n_failed, outage, drivers,
               t_day0: int, month_days: int) -> dict:
    """Complaints filed this month, keyed later by the e-mail or phone given."""
    logit = -5.2 + 0.45 * (6.0 - sat) + 1.0 * n_unresolved + 0.8 * n_failed + 1.0 * outage
    hit = rng.random(len(idx)) < mech.sigmoid(logit)
    cust = idx[hit]
    kind = np.where(pop.has_email[cust] & (rng.random(len(cust)) < 0.7), 0, 1)
    kind = np.where(~pop.has_phone[cust], 0, kind)
    ok = pop.has_email[cust] | (kind == 1)
    cust, kind = cust[ok], kind[ok]
    d = drivers[hit][ok]
    category = np.where(d.max(axis=1) > 0.3, d.argmax(axis=1), -1)
    return {"cust": cust, "contact_type": kind, "category": category,
            "severity": np.clip(1 + (d.max(axis=1) > 1.5) + (d.max(axis=1) > 3), 1, 3),
            "received_day": t_day0 + rng.uniform(0, month_days, len(cust))}

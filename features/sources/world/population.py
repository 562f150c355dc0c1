"""Who the customers are: static traits (some hidden) and CRM contact identifiers.

Hidden traits (price sensitivity, engagement, contact aversion, baseline
satisfaction, ticket propensity) only ever reach the ground-truth folder; the
CRM export carries what a real CRM would know.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEGMENTS = np.array(["consumer", "small_business", "enterprise"])
PLANS = np.array(["basic", "standard", "premium"])
CONTRACTS = np.array(["month_to_month", "one_year", "two_year"])
CONTRACT_MONTHS = np.array([0, 12, 24])
REGIONS = np.array(["north", "south", "east", "west", "central", "coastal"])
REGION_P = [0.2, 0.2, 0.17, 0.17, 0.14, 0.12]
PLAN_PRICE = np.array([35.0, 60.0, 95.0])
SEGMENT_PRICE_FACTOR = np.array([1.0, 1.6, 3.0])
PLAN_USAGE = np.array([40.0, 80.0, 150.0])
CONTACT_AVERSE_SHARE = 0.12
# P(opted out of e-mail, of calls) for customers who are not / are contact-averse
OPT_OUT_P = np.array([[0.04, 0.06], [0.30, 0.45]])


@dataclass
class Population:
    """Arrays of length n, one entry per customer of a chunk."""

    number: np.ndarray          # global customer number (int64), customer_id = C + zero-padded
    signup_month: np.ndarray    # month index of signup (negative: before the history starts)
    signup_day: np.ndarray      # day of month of signup (0-based)
    segment: np.ndarray         # index into SEGMENTS
    region: np.ndarray          # index into REGIONS
    plan: np.ndarray            # index into PLANS at signup
    contract: np.ndarray        # index into CONTRACTS
    list_price: np.ndarray      # monthly list price at signup
    rep: np.ndarray             # rep number
    price_sens: np.ndarray      # hidden: 0-1, how much price matters
    engagement: np.ndarray      # hidden: standard normal, drives usage and survey response
    contact_averse: np.ndarray  # hidden: reacts badly to any outreach
    base_sat: np.ndarray        # hidden: satisfaction the customer reverts to (0-10)
    ticket_prone: np.ndarray    # hidden: multiplier of the ticket rate
    base_usage: np.ndarray      # hidden: typical monthly usage units
    has_email: np.ndarray
    has_phone: np.ndarray
    has_app: np.ndarray
    phone_number: np.ndarray    # int64 10-digit number (shared by a few households)
    email_opt_out: np.ndarray   # CRM consent: no marketing e-mail (averse customers opt out more)
    phone_opt_out: np.ndarray   # CRM consent: do not call


def draw_population(
    rng: np.random.Generator,
    numbers: np.ndarray,
    months: int,
    share_existing: float,
    n_reps: int,
) -> Population:
    """Draw the customers numbered ``numbers``; signups spread before and during the history.

    A customer is an existing one with probability ``share_existing`` (joined 1-72 months
    before the start), else joins in a uniform month of the history: the acquisition
    process ``signups_per_month`` carries on after the history (``arrivals``).
    """
    n = len(numbers)
    existing = rng.random(n) < share_existing
    signup_month = np.where(
        existing, -rng.integers(1, 73, n), rng.integers(0, months, n)
    ).astype(np.int32)
    return draw_customers(rng, numbers, signup_month, n_reps)


def signups_per_month(customers: int, months: int, share_existing: float) -> float:
    """Expected new customers per history month: the ``1 - share_existing`` part of the
    ``customers`` spread uniformly over the ``months`` (``draw_population``)."""
    return customers * (1.0 - share_existing) / months


def rep_count(customers: int, customers_per_rep: int) -> int:
    """Reps of the world, sized on the history's customers; a customer's rep is its number
    modulo this count (new customers of stepped months included)."""
    return max(1, -(-customers // customers_per_rep))


def draw_customers(rng: np.random.Generator, numbers: np.ndarray, signup_month: np.ndarray,
                   n_reps: int) -> Population:
    """The customers numbered ``numbers`` who sign up in ``signup_month``: segment, plan,
    price, hidden traits, identifiers, consent and rep (the number modulo ``n_reps``)."""
    n = len(numbers)
    segment = rng.choice(3, n, p=[0.72, 0.2, 0.08]).astype(np.int8)
    contract_p = np.array([[0.55, 0.3, 0.15], [0.45, 0.35, 0.2], [0.2, 0.4, 0.4]])
    contract = _choice_rows(rng, contract_p[segment]).astype(np.int8)
    plan = rng.choice(3, n, p=[0.4, 0.4, 0.2]).astype(np.int8)
    price = PLAN_PRICE[plan] * SEGMENT_PRICE_FACTOR[segment] * rng.uniform(0.95, 1.05, n)
    price_sens = rng.beta(2.0, 3.0, n) + np.where(segment == 0, 0.08, -0.08)
    engagement = rng.standard_normal(n)
    has_app = rng.random(n) < _sigmoid(0.4 + 0.9 * engagement)
    phone = 2_000_000_000 + rng.integers(0, 7_999_999_999, n)
    shared = rng.random(n) < 0.003  # households sharing one phone number
    phone[shared] = phone[rng.integers(0, n, shared.sum())]
    averse = rng.random(n) < CONTACT_AVERSE_SHARE
    return Population(
        number=numbers.astype(np.int64),
        signup_month=np.asarray(signup_month, np.int32),
        signup_day=rng.integers(0, 28, n).astype(np.int16),
        segment=segment,
        region=rng.choice(len(REGIONS), n, p=REGION_P).astype(np.int8),
        plan=plan,
        contract=contract,
        list_price=np.round(price, 2),
        rep=(numbers % n_reps).astype(np.int32),
        price_sens=np.clip(price_sens, 0.0, 1.0),
        engagement=engagement,
        contact_averse=averse,
        base_sat=np.clip(rng.normal(7.3, 1.0, n) + 0.25 * engagement, 2.0, 10.0),
        ticket_prone=rng.lognormal(0.0, 0.5, n),
        base_usage=PLAN_USAGE[plan] * np.exp(0.35 * engagement + rng.normal(0, 0.3, n)),
        has_email=rng.random(n) < 0.97,
        has_phone=rng.random(n) < 0.9,
        has_app=has_app,
        phone_number=phone,
        email_opt_out=rng.random(n) < OPT_OUT_P[averse.astype(int), 0],
        phone_opt_out=rng.random(n) < OPT_OUT_P[averse.astype(int), 1],
    )


def _choice_rows(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a probability matrix."""
    return (rng.random((len(p), 1)) > np.cumsum(p, axis=1)).sum(axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def customer_ids(numbers: np.ndarray) -> np.ndarray:
    return np.char.add("C", np.char.zfill(numbers.astype(str), 7))


def emails(numbers: np.ndarray) -> np.ndarray:
    return np.char.add(np.char.add("customer.", numbers.astype(str)), "@example.com")


def app_ids(numbers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    salt = rng.integers(0, 16**6, len(numbers))
    return np.char.add(
        np.char.add("app-", np.char.zfill(np.char.mod("%x", salt), 6)),
        np.char.zfill(numbers.astype(str), 7),
    )


def format_phones(phone: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Phone numbers in the mixed formats real systems hold (same digits)."""
    if len(phone) == 0:                    # numpy's zfill cannot size an empty array
        return np.array([], dtype=str)
    s = phone.astype(str)
    area = (phone // 10**7).astype(str)
    mid = np.char.zfill(((phone // 10**4) % 1000).astype(str), 3)
    last = np.char.zfill((phone % 10**4).astype(str), 4)
    styles = rng.integers(0, 4, len(s))
    paren = np.char.add(np.char.add(np.char.add("+1 (", area), np.char.add(") ", mid)),
                        np.char.add("-", last))
    dotted = np.char.add(np.char.add(area, "."), np.char.add(np.char.add(mid, "."), last))
    out = np.where(styles == 1, paren, s)
    out = np.where(styles == 2, dotted, out)
    return np.where(styles == 3, np.char.add("+1", s), out)

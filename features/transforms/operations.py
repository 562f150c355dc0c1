"""``customer_o``: operations features (billing, usage, support, orders, retention actions).

``Operations.at(snapshot)`` returns one array per feature for every customer code, from
events strictly before the snapshot (each known only once it has happened: a payment when
paid, a ticket's outcome when closed). The exception is channel consent (``email_opt_out``,
``phone_opt_out``): the contract carries it as the CRM holds it at export time, undated,
so every snapshot sees the exported value. Design: docs/features.md#operations-features
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .events import Events, MonthGrid
from .inputs import CONSENT_COLUMNS, NS_PER_DAY, Clean, ns


def categorical(codes: np.ndarray, categories) -> pd.Categorical:
    """Integer codes (-1 = unknown) as a categorical the writer turns into strings."""
    return pd.Categorical.from_codes(np.asarray(codes, np.int64), categories=list(categories))


def _flag(values: pd.Series) -> np.ndarray:
    """A nullable boolean column as 1.0 / 0.0 / NaN (unknown)."""
    return pd.to_numeric(values.astype("boolean"), errors="coerce").astype("float64").to_numpy()


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den where the denominator is a positive number, NaN otherwise."""
    ok = np.isfinite(num) & np.isfinite(den) & (den > 0)
    return np.where(ok, num / np.where(ok, den, 1.0), np.nan)


def row_mean(block: np.ndarray) -> np.ndarray:
    """Mean of the months present in each row (NaN when none), without warnings."""
    present = np.isfinite(block)
    count = present.sum(axis=1)
    return np.where(count > 0, np.where(present, block, 0).sum(axis=1) / np.maximum(count, 1),
                    np.nan)


def row_max(block: np.ndarray) -> np.ndarray:
    """Max of the months present in each row (NaN when none)."""
    present = np.isfinite(block)
    return np.where(present.any(axis=1), np.where(present, block, -np.inf).max(axis=1), np.nan)


def seasonally_adjusted(units: np.ndarray) -> np.ndarray:
    """Each month's usage over the median usage of all customers that month.

    Usage swings with the season (and with holidays), so a customer's month compared
    with their own past mixes their trend with the calendar; dividing by the
    population's level of the same month leaves the customer's own change.
    """
    counted = np.isfinite(units).sum(axis=0)
    level = np.full(units.shape[1], np.nan)
    if units.size:
        level[counted > 0] = np.nanmedian(units[:, counted > 0], axis=0)
    return units / np.where(level > 0, level, np.nan)


def adjusted_by(grid: MonthGrid, levels: dict[int, float]) -> np.ndarray:
    """``seasonally_adjusted`` for a grid that holds only some customers (a bucket), with
    the population's levels given: month index (year * 12 + month - 1) -> median usage."""
    units = grid.values["units"]
    level = np.array([levels.get(grid.base + j, np.nan) for j in range(units.shape[1])],
                     np.float64)
    return units / np.where(level > 0, level, np.nan)


class Operations:
    """O-data sources indexed for point-in-time lookups."""

    def __init__(self, clean: Clean, levels: dict[int, float] | None = None):
        """``levels``: the population's usage level per month, when ``clean`` holds only
        some customers (``features.transforms.parallel``); computed from ``clean`` if None."""
        n, t = clean.n, clean.tables
        cust = clean.customers
        self.segment = categorical(cust["segment"].cat.codes, cust["segment"].cat.categories)
        self.region = categorical(cust["region"].cat.codes, cust["region"].cat.categories)
        self.signup_ns = ns(cust["signup_date"])
        self.consent = {c: _flag(cust[c]) if c in cust else np.full(n, np.nan)
                        for c in CONSENT_COLUMNS}
        self._index_billing(t["billing_invoices"], n)
        use = t["product_usage"]
        self.usage = MonthGrid(use["code"].to_numpy(), use["month"], n,
                               units=use["usage_units"], active=use["active_days"],
                               sessions=use["sessions"])
        self.usage.values["seasonal"] = (seasonally_adjusted(self.usage.values["units"])
                                         if levels is None else adjusted_by(self.usage, levels))
        self._index_tickets(t["support_tickets"], n)
        orders = t["orders"]
        self.orders = Events.from_frame(orders, orders["ordered_at"], n,
                                        failed=(orders["status"] == "failed").to_numpy(float))
        act = t["interventions"]
        act = act[~act["control_group"].astype(bool) & (act["outcome"] != "no_answer")]
        self.actions = Events.from_frame(act, act["assigned_at"], n)

    def _index_billing(self, inv: pd.DataFrame, n: int) -> None:
        """Invoices by invoice date; payments by the date they were settled."""
        end = inv["contract_end_date"]
        end_day = np.where(end.isna(), np.nan, ns(end.fillna(pd.Timestamp(0, tz="UTC"))))
        self.plans, self.contracts = inv["plan"].cat.categories, inv["contract"].cat.categories
        self.invoices = Events.from_frame(
            inv, inv["invoice_date"], n, list_price=inv["list_price"].to_numpy(float),
            plan=inv["plan"].cat.codes.to_numpy(), contract=inv["contract"].cat.codes.to_numpy(),
            end_day=end_day / NS_PER_DAY, price_change=inv["price_change_pct"].to_numpy(float),
            discount=inv["discount"].to_numpy(float))
        late = inv["days_late"].fillna(0).to_numpy(float)
        paid_at = ns(inv["invoice_date"]) + (late * NS_PER_DAY).astype(np.int64)
        self.payments = Events.from_frame(inv, paid_at, n, days_late=late,
                                          late=(late > 0).astype(float))

    def _index_tickets(self, tk: pd.DataFrame, n: int) -> None:
        """Tickets by opening time; outcomes by closing time."""
        cat = tk["category"].astype(str)
        self.opened = Events.from_frame(
            tk, tk["opened_at"], n, technical=(cat == "technical").to_numpy(float),
            outage=(cat == "outage").to_numpy(float), billing=(cat == "billing").to_numpy(float))
        closed = tk[tk["closed_at"].notna()]
        days = (closed["closed_at"] - closed["opened_at"]).dt.total_seconds() / 86_400.0
        self.closed = Events.from_frame(
            closed, closed["closed_at"], n, resolution_days=days.to_numpy(float),
            unresolved=(closed["status"].astype(str) == "unresolved").to_numpy(float))

    def _tenure_days(self, t: int) -> np.ndarray:
        """Whole days since signup; NaN when the export has no signup date for the customer."""
        known = self.signup_ns != np.iinfo(np.int64).min   # NaT
        return np.where(known, (t - self.signup_ns) // NS_PER_DAY, np.nan)

    def at(self, snapshot: pd.Timestamp) -> dict[str, np.ndarray]:
        """Every customer_o feature for every customer code, as of ``snapshot``."""
        t = snapshot.value
        out = {"segment": self.segment, "region": self.region,
               "tenure_days": self._tenure_days(t), **self.consent}
        out |= self._billing(t)
        out |= self._usage(snapshot)
        out |= self._tickets(t)
        out |= self._orders_actions(t)
        return out

    def _billing(self, t: int) -> dict[str, np.ndarray]:
        inv, pay = self.invoices, self.payments
        return {
            "plan": categorical(inv.latest("plan", t), self.plans),
            "contract": categorical(inv.latest("contract", t), self.contracts),
            "days_to_renewal": inv.latest("end_day", t) - t / NS_PER_DAY,
            "monthly_charge": inv.latest("list_price", t),
            "price_change_90d_pct": inv.reduce("price_change", t, 90),
            "discount_90d": inv.reduce("discount", t, 90),
            "late_payments_90d": pay.reduce("late", t, 90, empty=0).astype(np.int64),
            "days_late_max_90d": pay.reduce("days_late", t, 90, np.maximum),
        }

    def _usage(self, snapshot: pd.Timestamp) -> dict[str, np.ndarray]:
        g = self.usage
        last = g.month("units", snapshot, 1)
        return {
            "usage_last_month": last,
            "usage_30d_trend": ratio(last, g.month("units", snapshot, 2)) - 1,
            "usage_90d_trend": ratio(row_mean(g.block("units", snapshot, 3, 3)),
                                     row_mean(g.block("units", snapshot, 6, 3))) - 1,
            "usage_drop_ratio": ratio(last, row_max(g.block("units", snapshot, 7, 6))),
            **self._usage_vs_usual(snapshot),
            "active_days_last_month": g.month("active", snapshot, 1),
            "sessions_last_month": g.month("sessions", snapshot, 1),
        }

    def _usage_vs_usual(self, snapshot: pd.Timestamp) -> dict[str, np.ndarray]:
        """Last and second-last month against the customer's usual (median of the six
        months before), all seasonally adjusted: the first sign of a decision to leave."""
        g = self.usage
        block = g.block("seasonal", snapshot, 7, 6)
        usual = np.full(len(block), np.nan)
        seen = np.isfinite(block).any(axis=1)
        usual[seen] = np.nanmedian(block[seen], axis=1)
        return {"usage_vs_usual": ratio(g.month("seasonal", snapshot, 1), usual),
                "usage_prev_vs_usual": ratio(g.month("seasonal", snapshot, 2), usual)}

    def _tickets(self, t: int) -> dict[str, np.ndarray]:
        op, cl = self.opened, self.closed
        count = lambda name: op.reduce(name, t, 90, empty=0).astype(np.int64)  # noqa: E731
        return {
            "tickets_30d": op.count(t, 30),
            "tickets_90d": op.count(t, 90),
            "tickets_unresolved_90d": cl.reduce("unresolved", t, 90, empty=0).astype(np.int64),
            "tickets_open_now": op.count(t) - cl.count(t),
            "mean_resolution_days_90d": cl.mean("resolution_days", t, 90),
            "max_resolution_days_90d": cl.reduce("resolution_days", t, 90, np.maximum),
            "technical_tickets_90d": count("technical"),
            "outage_tickets_90d": count("outage"),
            "billing_tickets_90d": count("billing"),
        }

    def _orders_actions(self, t: int) -> dict[str, np.ndarray]:
        return {
            "orders_90d": self.orders.count(t, 90),
            "failed_orders_90d": self.orders.reduce("failed", t, 90, empty=0).astype(np.int64),
            "actions_90d": self.actions.count(t, 90),
            "days_since_last_action": self.actions.days_since_latest(t),
        }

"""Column layouts of the exported tables (docs/data_contract.md), one function each."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import mechanisms as mech
from .campaigns import STRATA
from .dynamics import TICKET_CATEGORIES, TICKET_CHANNELS, WorldState
from .export import Clock, Sink, pick
from .population import (
    CONTRACTS,
    PLANS,
    REGIONS,
    SEGMENTS,
    Population,
    app_ids,
    emails,
    format_phones,
)
from .surveys import CHANNELS, TOUCHPOINTS

PRODUCT_ARMS = ("policy", "experiment", "risk_ranked", "random")   # arms of the product's plan
PRODUCT_STRATUM = len(STRATA)   # first log stratum of the product's planned actions: product_<arm>
LOG_STRATA = np.append(STRATA, [f"product_{arm}" for arm in PRODUCT_ARMS])
ORDER_STATUS = np.array(["delivered", "failed", "cancelled"])
COMPLAINT_KIND = np.array(["email", "phone"])
DRIVER_LABELS = np.append(mech.DRIVERS, "general")


class Chunk:
    """A chunk's customers with the identifiers every table needs."""

    def __init__(self, pop: Population, rng: np.random.Generator, n_reps: int):
        self.pop = pop
        self.ids = pa.array(np.char.add("C", np.char.zfill(pop.number.astype(str), 7)))
        self.email = emails(pop.number)
        self.phone = format_phones(pop.phone_number, rng)
        self.app = app_ids(pop.number, rng)
        self.rep = np.char.add("R", np.char.zfill(pop.rep.astype(str), 4))

    IDENTIFIERS = ("email", "phone", "app", "rep")

    @classmethod
    def restore(cls, pop: Population, ids: np.ndarray, identifiers: dict) -> Chunk:
        """A chunk from saved identifiers (their formats were drawn once, at simulation)."""
        chunk = cls.__new__(cls)
        chunk.pop, chunk.ids = pop, pa.array(ids.astype(str))
        for name in cls.IDENTIFIERS:
            setattr(chunk, name, identifiers[name])
        return chunk

    def cid(self, cust) -> pa.Array:
        return pc.take(self.ids, pa.array(np.asarray(cust, np.int64)))


def write_operations(sink: Sink, clock: Clock, ch: Chunk, out: dict, t: int) -> None:
    b = out["billing"]
    n = len(b["cust"])
    month_tag = np.datetime_as_string(clock.start + clock.day0[t], unit="M").replace("-", "")
    ids, _ = sink.next_ids(f"INV{month_tag}-", n)
    sink.write("billing_invoices", {
        "invoice_id": ids, "customer_id": ch.cid(b["cust"]), "invoice_date": clock.dates(b["day"]),
        "plan": pick(PLANS, b["plan"]), "contract": pick(CONTRACTS, b["contract"]),
        "contract_end_date": _month_dates(clock, b["contract_end"]),
        "list_price": b["list_price"], "price_change_pct": b["price_change_pct"],
        "discount": b["discount"], "amount": b["amount"],
        "days_late": pa.array(b["days_late"], pa.int32()),
    })
    u = out["usage"]
    sink.write("product_usage", {
        "customer_id": ch.cid(u["cust"]),
        "month": clock.dates(np.full(len(u["cust"]), clock.day0[t])),
        "usage_units": u["usage_units"], "active_days": pa.array(u["active_days"], pa.int32()),
        "sessions": pa.array(u["sessions"], pa.int32()),
    })
    _write_tickets(sink, clock, ch, out["tickets"])
    o = out["orders"]
    ids, out["order_base"] = sink.next_ids("O", len(o["cust"]))
    sink.write("orders", {
        "order_id": ids, "customer_id": ch.cid(o["cust"]),
        "ordered_at": clock.stamps(o["ordered_day"]), "amount": o["amount"],
        "status": pick(ORDER_STATUS, o["status"]),
    })


def _write_tickets(sink: Sink, clock: Clock, ch: Chunk, tk: dict) -> None:
    closed_day = tk["opened_day"] + tk["res_days"]
    still_open = closed_day >= clock.end_day
    status = np.where(still_open, "open", np.where(tk["unresolved"], "unresolved", "resolved"))
    ids, tk["base"] = sink.next_ids("T", len(tk["cust"]))
    sink.write("support_tickets", {
        "ticket_id": ids, "customer_id": ch.cid(tk["cust"]),
        "opened_at": clock.stamps(tk["opened_day"]),
        "closed_at": clock.stamps(np.where(still_open, 0, closed_day), mask=still_open),
        "category": pick(TICKET_CATEGORIES, tk["category"]), "status": pa.array(status),
        "channel": pick(TICKET_CHANNELS, tk["channel"]),
    })


def _month_dates(clock: Clock, month_idx) -> pa.Array:
    month_idx = np.asarray(month_idx)
    none = month_idx < 0
    first = np.datetime64(clock.start, "M") + np.where(none, 0, month_idx)
    return pa.array(first.astype("datetime64[D]"), pa.date32(), mask=none)


def write_surveys(sink: Sink, clock: Clock, ch: Chunk, out: dict, rng) -> None:
    inv, resp = out["invitations"], out["responses"]
    seen = inv["sent_day"] < clock.end_day
    inv_ids, first = sink.next_ids("SI", len(inv["cust"]))
    month = (clock.start + np.floor(inv["sent_day"]).astype("timedelta64[D]")).astype("datetime64[M]")
    survey_id = np.char.add(np.char.add(TOUCHPOINTS[inv["touchpoint"]], "-"),
                            np.datetime_as_string(month, unit="M"))
    trigger = _trigger_ids(inv, out)
    sink.write("survey_invitations", {
        "invitation_id": inv_ids.filter(seen), "customer_id": ch.cid(inv["cust"][seen]),
        "survey_id": pa.array(survey_id[seen]), "touchpoint": pick(TOUCHPOINTS, inv["touchpoint"][seen]),
        "channel": pick(CHANNELS, inv["channel"][seen]), "sent_at": clock.stamps(inv["sent_day"][seen]),
        "trigger_id": trigger.filter(pa.array(seen)),
    })
    sink.write("survey_truth", {
        "invitation_id": inv_ids.filter(seen), "customer_id": ch.cid(inv["cust"][seen]),
        "survey_id": pa.array(survey_id[seen]), "touchpoint": pick(TOUCHPOINTS, inv["touchpoint"][seen]),
        "sent_at": clock.stamps(inv["sent_day"][seen]),
        "true_nps": pa.array(inv["nps_true"][seen], pa.int8()),
        "responded": pa.array(inv["responded"][seen]),
        "satisfaction": pa.array(inv["sat"][seen], pa.float32()),
    })
    _write_responses(sink, clock, ch, inv, resp, survey_id, rng)


def _trigger_ids(inv: dict, out: dict) -> pa.Array:
    trig = inv["trigger"]
    tp = inv["touchpoint"]
    num = np.where(tp == 1, out["tickets"]["base"] + trig, out["order_base"] + trig)
    prefix = np.where(tp == 1, "T", "O")
    digits = np.char.zfill(num.astype(str), 9)
    return pa.array(np.char.add(prefix, digits), pa.string(), mask=tp == 0)


def _write_responses(sink, clock, ch: Chunk, inv, resp, survey_id, rng) -> None:
    keep = (resp["responded_day"] < clock.end_day) & (inv["sent_day"][resp["inv"]] < clock.end_day)
    r = {k: v[keep] for k, v in resp.items()}
    order = np.argsort(r["responded_day"], kind="stable")
    r = {k: v[order] for k, v in r.items()}
    cust = inv["cust"][r["inv"]]
    ids, _ = sink.next_ids("RSP", len(cust))
    sink.write("survey_responses", {
        "response_id": ids, "survey_id": pa.array(survey_id[r["inv"]]),
        "channel": pick(CHANNELS, r["channel"]),
        "respondent": pa.array(respondent_ids(ch, cust, r["channel"], rng)),
        "responded_at": clock.stamps(r["responded_day"]), "nps": pa.array(r["nps"], pa.int32()),
        "csat": _optional_int(r["csat"]), "effort": _optional_int(r["effort"]),
        "comment": pa.array(r["comment"], pa.string()),
    })


def _optional_int(x: np.ndarray) -> pa.Array:
    nan = np.isnan(x)
    return pa.array(np.where(nan, 0, x).astype(np.int32), pa.int32(), mask=nan)


def respondent_ids(ch: Chunk, cust, channel, rng) -> np.ndarray:
    """The identifier the survey tool records, with real-world formatting noise and typos."""
    n = len(cust)
    email = ch.email[cust]
    noisy = rng.random(n)
    email = np.where(noisy < 0.1, np.char.upper(email), email)
    email = np.where((noisy > 0.1) & (noisy < 0.15), np.char.add(" ", email), email)
    phone = format_phones(ch.pop.phone_number[cust], rng)
    app = np.where(rng.random(n) < 0.05, np.char.upper(ch.app[cust]), ch.app[cust])
    out = np.where(channel == 0, email, np.where(channel == 1, phone, app)).astype(object)
    typo = rng.random(n) < 0.01
    out[typo] = np.char.add("unknown-", rng.integers(10**6, 10**7, typo.sum()).astype(str))
    return out


def write_complaints(sink: Sink, clock: Clock, ch: Chunk, cp: dict, rng) -> None:
    cust = cp["cust"]
    ids, _ = sink.next_ids("CMP", len(cust))
    phone = format_phones(ch.pop.phone_number[cust], rng)
    contact = np.where(cp["contact_type"] == 0, np.char.upper(ch.email[cust]), phone)
    sink.write("complaints", {
        "complaint_id": ids, "received_at": clock.stamps(cp["received_day"]),
        "contact_type": pick(COMPLAINT_KIND, cp["contact_type"]), "contact": pa.array(contact),
        "category": pick(DRIVER_LABELS, np.where(cp["category"] < 0, 4, cp["category"])),
        "severity": pa.array(cp["severity"], pa.int32()),
    })


def write_interventions(sink: Sink, clock: Clock, ch: Chunk, iv: dict) -> None:
    ids = _intervention_ids(sink, clock, ch, iv)
    sink.write("interventions", {
        "intervention_id": ids, "customer_id": ch.cid(iv["cust"]),
        "action": pick(mech.ACTIONS, iv["action"]), "assigned_at": clock.stamps(iv["assigned_day"]),
        "rep_id": pa.array(ch.rep[iv["cust"]]), "cost": iv["cost"],
        "control_group": pa.array(iv["control"]), "outcome": pick(mech.OUTCOMES, iv["outcome"]),
        "stratum": pick(LOG_STRATA, iv["stratum"]), "assignment_probability": iv["probability"],
    })
    sink.write("intervention_effects", {
        "intervention_id": ids, "customer_id": ch.cid(iv["cust"]),
        "action": pick(mech.ACTIONS, iv["action"]), "control_group": pa.array(iv["control"]),
        "true_effect_90d": iv["true_effect"], "realised_logit_shift": iv["realised_shift"],
    })


def _intervention_ids(sink: Sink, clock: Clock, ch: Chunk, iv: dict) -> pa.Array:
    """Programme rows are numbered; a planned action keeps the id the serving database
    exports it under (``plan-<run date>-<customer>``), so the two logs join, not duplicate."""
    product = np.asarray(iv["stratum"]) >= PRODUCT_STRATUM
    numbered, _ = sink.next_ids("INT", int((~product).sum()))
    if not product.any():
        return numbered
    ids = np.empty(len(product), object)
    ids[~product] = numbered.to_numpy(zero_copy_only=False)
    day = np.datetime_as_string(clock.start + np.floor(iv["assigned_day"][product]).astype(
        "timedelta64[D]"), unit="D")
    cust = ch.cid(iv["cust"][product]).to_numpy(zero_copy_only=False).astype(str)
    ids[product] = np.char.add(np.char.add("plan-", np.char.replace(day, "-", "")),
                               np.char.add("-", cust))
    return pa.array(ids, pa.string())


def write_truth_month(sink: Sink, clock: Clock, ch: Chunk, tm: dict, t: int) -> None:
    n = len(tm["cust"])
    sink.write("satisfaction_monthly", {
        "customer_id": ch.cid(tm["cust"]), "month": clock.dates(np.full(n, clock.day0[t])),
        "satisfaction": pa.array(tm["sat"], pa.float32()),
        "churn_hazard": pa.array(tm["hazard"], pa.float32()),
        "main_driver": pick(DRIVER_LABELS, np.where(tm["driver"] < 0, 4, tm["driver"])),
    })


def write_customers(sink: Sink, clock: Clock, ch: Chunk, st: WorldState) -> None:
    """CRM export (state at the end of the history) and the customers' hidden truth."""
    pop = ch.pop
    signup = clock.dates(_signup_days(clock, pop))
    churned = (st.churn_day >= 0) & (st.churn_day < clock.end_day)
    sink.write("crm_customers", {
        "customer_id": ch.ids, "signup_date": signup, "segment": pick(SEGMENTS, pop.segment),
        "region": pick(REGIONS, pop.region), "rep_id": pa.array(ch.rep),
        "email": pa.array(ch.email, mask=~pop.has_email), "phone": pa.array(ch.phone, mask=~pop.has_phone),
        "app_id": pa.array(ch.app, mask=~pop.has_app),
        "status": pa.array(np.where(churned, "churned", "active")),
        "churn_date": clock.optional_dates(np.where(churned, st.churn_day, -1)),
        "notice_date": clock.optional_dates(np.where(st.notice_day < clock.end_day, st.notice_day, -1)),
        "email_opt_out": pa.array(pop.email_opt_out, mask=~pop.has_email),
        "phone_opt_out": pa.array(pop.phone_opt_out, mask=~pop.has_phone),
    })
    sink.write("customer_traits", {
        "customer_id": ch.ids, "price_sensitivity": pop.price_sens, "engagement": pop.engagement,
        "contact_averse": pa.array(pop.contact_averse), "base_satisfaction": pop.base_sat,
        "ticket_propensity": pop.ticket_prone,
    })
    decided = st.decided_month >= 0
    decision_day = np.where(decided, clock.day0[np.maximum(st.decided_month, 0)], -1)
    sink.write("churn", {
        "customer_id": ch.ids, "decision_month": clock.optional_dates(decision_day),
        "churn_date": clock.optional_dates(np.where(decided, st.churn_day, -1)),
    })


def _signup_days(clock: Clock, pop: Population) -> np.ndarray:
    first = np.datetime64(clock.start, "M") + pop.signup_month
    return (first.astype("datetime64[D]") - clock.start).astype(int) + pop.signup_day

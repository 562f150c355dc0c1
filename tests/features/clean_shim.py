"""Clean-like tables from a simulated raw world, for feature tests only.

A stand-in for the ingest stage (identity resolution per docs/data_contract.md,
simplified): survey responses and complaints are mapped to customers through
normalised e-mail / last 10 phone digits / app id (ambiguous identifiers are
dropped), responses are linked to the latest invitation of the same customer and
survey sent at or before them, and one response per invitation is kept.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PASS_THROUGH = ("crm_customers", "billing_invoices", "product_usage", "support_tickets",
                "orders", "survey_invitations", "interventions")


def _norm(kind: str, values: pd.Series) -> pd.Series:
    s = values.astype("string")
    if kind == "phone":
        digits = s.str.replace(r"\D", "", regex=True)
        return digits.str[-10:].where(digits.str.len() >= 10)
    return s.str.strip().str.lower()


def _lookup(crm: pd.DataFrame, kind: str) -> pd.Series:
    """Normalised identifier -> customer_id, for identifiers owned by exactly one customer."""
    keys = pd.DataFrame({"key": _norm(kind, crm[kind]), "customer_id": crm["customer_id"]})
    keys = keys.dropna(subset=["key"])
    counts = keys["key"].value_counts()
    keys = keys[keys["key"].map(counts) == 1]
    return keys.set_index("key")["customer_id"]


def _resolve(crm: pd.DataFrame, kinds: pd.Series, contacts: pd.Series) -> pd.Series:
    out = pd.Series(pd.NA, index=contacts.index, dtype=object)
    for kind, channel_values in (("email", ("email",)), ("phone", ("sms", "phone")),
                                 ("app_id", ("app",))):
        rows = kinds.isin(channel_values)
        out[rows] = _norm(kind, contacts[rows]).map(_lookup(crm, kind))
    return out


def _link(resp: pd.DataFrame, inv: pd.DataFrame) -> pd.DataFrame:
    """Attach the latest invitation (same customer and survey) sent at or before the answer."""
    left = resp.sort_values("responded_at")
    right = inv[["invitation_id", "customer_id", "survey_id", "sent_at"]].sort_values("sent_at")
    merged = pd.merge_asof(left, right, left_on="responded_at", right_on="sent_at",
                           by=["customer_id", "survey_id"], direction="backward")
    merged = merged.dropna(subset=["invitation_id"]).drop(columns=["sent_at"])
    merged = merged.sort_values(["responded_at", "response_id"])
    return merged.drop_duplicates(["customer_id", "invitation_id"], keep="first")


def clean_from_raw(raw_dir: Path, clean_dir: Path) -> Path:
    """Write clean-like tables for every contract table under ``clean_dir``."""
    clean_dir.mkdir(parents=True, exist_ok=True)
    crm = pd.read_parquet(raw_dir / "crm_customers.parquet")
    for name in PASS_THROUGH:
        pd.read_parquet(raw_dir / f"{name}.parquet").to_parquet(clean_dir / f"{name}.parquet")
    resp = pd.read_parquet(raw_dir / "survey_responses.parquet")
    resp["customer_id"] = _resolve(crm, resp["channel"], resp["respondent"])
    resp = resp.dropna(subset=["customer_id"])
    inv = pd.read_parquet(raw_dir / "survey_invitations.parquet")
    _link(resp, inv).reset_index(drop=True).to_parquet(clean_dir / "survey_responses.parquet")
    comp = pd.read_parquet(raw_dir / "complaints.parquet")
    comp["customer_id"] = _resolve(crm, comp["contact_type"], comp["contact"])
    comp.dropna(subset=["customer_id"]).reset_index(drop=True).to_parquet(
        clean_dir / "complaints.parquet")
    return clean_dir


"""Batch scoring's per-customer work for one customer bucket, on a Dask worker.

A bucket is ``features.transforms.buckets.bucket_of`` of the customer id (the feature
build's own buckets). ``score_partition`` does for its customers what ``score_as_of`` does
for everyone up to arbitration: who is open on the date, their point-in-time features,
scores and tags, the planning candidates (notices and consent applied), contacts, the
scoring and save-desk alerts, and the reasons of every customer those lists or the high
churn-risk tier show. It returns the scores for the write and, for the arbitration, the
candidates as arrays per customer and action (``Wide``), not as the long frame. After the
client's global arbitration, ``reasons_partition`` explains the planned customers of a bucket.
Design: docs/cluster.md#batch-scoring-on-the-cluster
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from configs.settings import Settings
from features.transforms.buckets import bucket_of, read_bucket_crm
from models.bundle import ModelBundle
from models.prescribe.consent import CONSENT_COLUMNS, planning_candidates
from models.prescribe.drivers import DriverInputs, encode_drivers
from models.prescribe.experiments import deliverable
from models.prescribe.slices import impact_slices
from models.scoring import reasons_json
from serving.batch import listed_without_reasons, score_blocks
from serving.batch_inputs import ACTIVE_COLUMNS, feature_rows, open_customers, open_notices, recent_contacts
from serving.run_alerts import save_desk_alerts, scoring_alerts

CONTACT_COLUMNS = ["customer_id", "days_since_last_action", "days_since_last_invitation"]
PAIR_COLUMNS = ("uplift", "expected_value", "eligible", "expected_value_low")


@dataclass
class Wide:
    """A bucket's planning candidates, one row per customer (not under notice) and one
    column per catalogue action: what the long candidate frame holds beyond the customer's
    scores (rep, churn probability, value at risk) and the catalogue (cost, minutes)."""

    customer_id: np.ndarray
    pairs: dict[str, np.ndarray]    # PAIR_COLUMNS present -> (customers x actions)


@dataclass
class Partition:
    """What a bucket sends back: the write's rows and the arbitration's inputs."""

    customers: pd.DataFrame         # SCORE_COLUMNS, reasons of the listed customers set
    tags: pd.DataFrame
    tag_events: pd.DataFrame
    contacts: pd.DataFrame          # CONTACT_COLUMNS + contacts_7d
    wide: Wide
    alerts: pd.DataFrame            # save desk, then the scoring alerts
    blocked: int                    # eligible pairs consent blocked
    experiment_inputs: DriverInputs     # driver inputs of who an experiment may draw
    written: dict | None = None     # rows per partition the bucket wrote itself (PostgreSQL):
                                    # its tags and tag events then stay on the worker


def crm_rows(clean_dir, index: int, count: int) -> pd.DataFrame:
    """The bucket's crm rows: what opening, notices and consent read (streamed, not whole)."""
    names = pq.read_schema(clean_dir / "crm_customers.parquet").names
    wanted = [*ACTIVE_COLUMNS, "notice_date", *CONSENT_COLUMNS]
    _, crm = read_bucket_crm(clean_dir, index, count, [c for c in wanted if c in names])
    return crm.to_pandas()


def split_by_bucket(frame: pd.DataFrame | None, count: int) -> list[pd.DataFrame | None]:
    """``frame``'s rows per bucket of its customer_id (None stays None for every bucket)."""
    if frame is None:
        return [None] * count
    code = bucket_of(pa.array(frame["customer_id"].astype(object)), count)
    parts = [frame[code == i] for i in range(count)]
    for part in parts:
        part.attrs.update(frame.attrs)
    return parts


def has_driver_arms(uplift) -> bool:
    """Whether ``plan_experiments`` can plan at all (its arms with a driver posterior)."""
    arms = getattr(uplift, "arms", None) or {}
    return any(getattr(m, "driver", None) is not None and len(m.driver.mean) for m in arms.values())


def to_wide(candidates: pd.DataFrame, k: int) -> Wide:
    """The long, customer-major candidate frame (catalogue order per customer) as arrays."""
    n = len(candidates) // k
    codes = candidates["action_id"].cat.codes.to_numpy()
    if len(candidates) != n * k or not (codes.reshape(n, k) == np.arange(k)).all():
        raise RuntimeError("candidates: not one row per customer and catalogue action")
    pairs = {c: candidates[c].to_numpy().reshape(n, k) for c in PAIR_COLUMNS if c in candidates}
    return Wide(candidates["customer_id"].to_numpy()[::k], pairs)


def experiment_inputs(candidates, contacts, features, bundle: ModelBundle,
                      settings: Settings) -> DriverInputs:
    """The driver inputs (``models.prescribe.drivers``) of the policy-slice customers with a
    deliverable pair, encoded here: a superset of the pool ``plan_experiments`` draws from
    (it keeps only the customers it is given). No feature row leaves the bucket."""
    if not has_driver_arms(bundle.uplift):
        return DriverInputs(np.empty(0, dtype=object), np.empty((0, 0)), np.empty(0))
    params = settings.prescribe
    ids = np.empty(0, dtype=object)
    if len(candidates):
        who = candidates.loc[deliverable(candidates, contacts, bundle.catalogue, params), "customer_id"]
        ids = who.unique()
        ids = ids[impact_slices(ids, params.impact_slice_share) == "policy"]
        ids = features.loc[features["customer_id"].isin(ids), "customer_id"].to_numpy()  # feature order
    return encode_drivers(bundle.uplift, features, ids)   # no rows: still the arms' columns


def explain_rows(bundle: ModelBundle, customers: pd.DataFrame, features: pd.DataFrame,
                 rows: np.ndarray) -> None:
    """Reasons of ``rows`` into ``customers`` (features in the same row order)."""
    if len(rows):
        customers.loc[rows, "reasons"] = reasons_json(bundle, features.iloc[rows].reset_index(drop=True))


def score_partition(settings: Settings, bundle: ModelBundle, as_of: date, index: int, count: int,
                    previous: pd.DataFrame | None) -> Partition:
    """Bucket ``index`` of ``count``: everything per customer up to arbitration (one thread)."""
    crm = crm_rows(settings.clean_dir, index, count)
    features = feature_rows(settings, open_customers(crm, as_of), as_of, bundle.feature_service)
    scored = score_blocks(features, bundle, settings, as_of, previous, 1)
    has_notice = "notice_date" in crm
    notices = open_notices(crm, as_of) if has_notice else pd.Series(dtype="datetime64[ns]")
    consent = crm.set_index("customer_id")[[c for c in CONSENT_COLUMNS if c in crm]]
    contacts = features[CONTACT_COLUMNS].assign(
        contacts_7d=recent_contacts(settings.clean_dir, features["customer_id"], as_of).to_numpy())
    candidates, blocked = planning_candidates(scored.candidates, notices.index, consent, bundle.catalogue)
    customers = scored.customers
    alerts = pd.concat([save_desk_alerts(customers, notices, as_of),
                        scoring_alerts(features, customers, settings, as_of)], ignore_index=True)
    explain_rows(bundle, customers, features, listed_without_reasons(customers, alerts))
    return Partition(customers, scored.tags, scored.tag_events, contacts,
                     to_wide(candidates, len(bundle.catalogue)), alerts, blocked,
                     experiment_inputs(candidates, contacts, features, bundle, settings))


def reasons_partition(settings: Settings, bundle: ModelBundle, as_of: date,
                      entity: pd.DataFrame) -> pd.Series:
    """Reasons of ``entity``'s customers (customer_id, rep_id; one bucket), index customer_id,
    from their features read again as of ``as_of``: no worker keeps features between passes."""
    features = feature_rows(settings, entity, as_of, bundle.feature_service)
    return pd.Series(reasons_json(bundle, features), index=features["customer_id"].to_numpy(),
                     dtype=object)

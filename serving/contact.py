"""What a rep needs to reach a customer, as a scoring run stores it: the latest survey comment
with its date, and the channels the customer may be reached on.

A channel's state follows the plan's consent rule (``models.prescribe.consent``): with an
opt-out flag in the export, the channel is ``ok`` only where the flag is recorded false and,
when the export has the identifier column (``phone``, ``email``), one is on file; ``opted_out``
where the flag is true; ``none`` where no identifier is on file; ``unknown`` where the flag is
empty. Without the flag the company does not record that consent: ``ok`` when an identifier
is on file (or the export has no identifier column), else ``none``. Numbers and addresses
themselves are never stored in the serving database.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from models.prescribe.consent import CHANNEL_CONSENT
from serving.batch_inputs import read_optional, row_filters

#: Catalogue channel -> the crm_customers column holding its identifier.
CHANNEL_IDENTIFIER = {"call": "phone", "email": "email"}
CHANNEL_STATES = ("ok", "opted_out", "none", "unknown")


def latest_comment_rows(clean_dir: Path, as_of: date,
                        customers: pd.Series | None = None) -> pd.DataFrame:
    """Each customer's most recent survey comment before ``as_of`` and when it was given
    (index customer_id; columns latest_comment, latest_comment_at as naive UTC); of
    ``customers`` only when given (a scoring bucket reads its own customers' responses)."""
    resp = read_optional(clean_dir, "survey_responses", ["customer_id", "responded_at", "comment"],
                         customers=customers)
    resp = resp[resp["comment"].notna() & (resp["responded_at"] < pd.Timestamp(as_of).tz_localize("UTC"))]
    # stable: of two comments at the same instant the later row wins, whoever else was read
    latest = resp.sort_values("responded_at", kind="stable").drop_duplicates("customer_id",
                                                                             keep="last")
    at = pd.to_datetime(latest["responded_at"], utc=True).dt.tz_localize(None)
    return pd.DataFrame(
        {"latest_comment": latest["comment"].to_numpy(), "latest_comment_at": at.to_numpy()},
        index=pd.Index(latest["customer_id"], name="customer_id"),
    )


def _states(crm: pd.DataFrame, channel: str) -> np.ndarray:
    n = len(crm)
    ident, flag = CHANNEL_IDENTIFIER[channel], CHANNEL_CONSENT[channel]
    on_file = crm[ident].notna().to_numpy() if ident in crm else np.ones(n, bool)
    if flag not in crm:
        return np.where(on_file, "ok", "none")
    value = crm[flag]
    opted_out = value.eq(True).fillna(False).to_numpy(bool)
    allowed = value.eq(False).fillna(False).to_numpy(bool)
    return np.select([opted_out, ~on_file, allowed], ["opted_out", "none", "ok"], "unknown")


def contact_channels(clean_dir: Path, customer_ids: pd.Series, only: bool = False) -> pd.Series:
    """Per customer: JSON of each channel's state (module docstring), aligned with
    ``customer_ids``; ``only``: read those customers' CRM rows only (a scoring bucket's)."""
    path = Path(clean_dir) / "crm_customers.parquet"
    names = pq.read_schema(path).names
    wanted = [*CHANNEL_IDENTIFIER.values(), *CHANNEL_CONSENT.values()]
    crm = pd.read_parquet(path, columns=["customer_id", *[c for c in wanted if c in names]],
                          filters=row_filters(customers=customer_ids if only else None))
    crm = crm.drop_duplicates("customer_id").set_index("customer_id").reindex(customer_ids.to_numpy())
    states = {channel: _states(crm, channel) for channel in CHANNEL_IDENTIFIER}
    rows = [json.dumps({c: str(states[c][i]) for c in states}) for i in range(len(crm))]
    return pd.Series(rows, index=customer_ids.index, dtype=object)


def channels_of(text: str | None) -> dict[str, str]:
    """The stored channels JSON as a dict (empty when the run did not store it)."""
    return json.loads(text) if text else {}

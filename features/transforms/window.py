"""One observation window: exports that list customers as of a date and whether they left.

Most company churn exports have no event history and often no churn dates: each
customer's current attributes and a status (``churned``/``active``) observed at the
export date. Then there is one snapshot, the export date: every customer who signed up
by then is a row (churners included), labelled by their status; scoring uses the same
snapshot for the customers still active. A churner without a date counts as leaving at
the export date. Design: docs/features.md#one-observation-window
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from .inputs import Clean, history_bounds

NO_EXPORT_DATE = ("churned customers have no churn date and the export date is unknown: set "
                  "`observed_until` in the mapping file or run `cem features --as-of <export date>`")


@dataclass(frozen=True)
class Window:
    export: pd.Timestamp          # midnight after the export date: the one snapshot
    churn_date: pd.Series         # churn dates with undated churners placed at the export date

    @property
    def snapshots(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex([self.export]).as_unit("ns")

    @property
    def as_of(self) -> pd.Timestamp:
        """The end of the observed history (exclusive)."""
        return self.export


def _utc_day(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).normalize().as_unit("ns")


def observation_window(clean: Clean, extra: pd.DataFrame, as_of: date | None) -> Window | None:
    """The window of a one-window export, or None when the clean tables hold a history.
    ``extra``: the crm columns ``status`` and ``observed_until`` when the export has them."""
    churn = clean.customers["churn_date"]
    undated = (extra["status"].astype(str).eq("churned").to_numpy() & churn.isna().to_numpy()
               if "status" in extra else churn.isna().to_numpy() & False)
    try:
        history_bounds(clean)
        has_history = True
    except ValueError:
        has_history = False
    if has_history and not undated.any():
        return None
    if "observed_until" in extra and extra["observed_until"].notna().any():
        day = _utc_day(extra["observed_until"].max())
    elif as_of is not None:
        day = _utc_day(as_of)
    else:
        raise ValueError(NO_EXPORT_DATE)
    export = day + pd.Timedelta(days=1)   # the end of the export day: it is fully observed
    filled = churn.copy()
    filled[undated] = export
    return Window(export, filled)

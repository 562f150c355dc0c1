"""``customer_fused``: signals that exist only when X and O data meet.

Each feature combines what a customer says (X) with what happened to them (O):
a detractor who also has an open ticket, a promoter whose usage is collapsing
(the score is stale), a complaint right after a price rise, a customer who never
answers surveys but keeps calling support. Flags are 1/0, and NaN when the X side
is unknown (no answer yet), so "unknown" is never presented as "no".
"""

from __future__ import annotations

import numpy as np

#: The customer_o / customer_x features each fused feature reads: it is absent when one of
#: them is (``features.transforms.present``).
FUSED_INPUTS: dict[str, tuple[str, ...]] = {
    "detractor_with_open_ticket": ("last_nps", "tickets_open_now"),
    "promoter_with_usage_drop": ("last_nps", "usage_drop_ratio"),
    "nps_trend_minus_usage_trend": ("nps_trend", "usage_90d_trend"),
    "sentiment_x_usage_trend": ("sentiment_90d", "usage_90d_trend"),
    "complaint_and_price_rise": ("complaints_90d", "price_change_90d_pct"),
    "silent_with_tickets": ("ever_responded", "tickets_90d"),
    "negative_comment_with_unresolved": ("sentiment_90d", "tickets_unresolved_90d"),
    "price_topic_x_price_change": ("topic_price_180d", "price_change_90d_pct"),
    "reliability_topic_x_outage_tickets": ("topic_reliability_180d", "outage_tickets_90d"),
    "support_topic_x_unresolved": ("topic_support_180d", "tickets_unresolved_90d"),
}


def flag(cond: np.ndarray, known: np.ndarray) -> np.ndarray:
    """1.0 / 0.0 where the inputs are known, NaN elsewhere."""
    return np.where(known, cond.astype(float), np.nan)


def fused_features(o: dict[str, np.ndarray], x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The customer_fused columns from the customer_o and customer_x arrays of one snapshot."""
    nps, trend = x["last_nps"], o["usage_90d_trend"]
    sent, price = x["sentiment_90d"], o["price_change_90d_pct"]
    return {
        "detractor_with_open_ticket": flag((nps <= 6) & (o["tickets_open_now"] > 0),
                                           np.isfinite(nps)),
        "promoter_with_usage_drop": flag((nps >= 9) & (o["usage_drop_ratio"] < 0.7),
                                         np.isfinite(nps) & np.isfinite(o["usage_drop_ratio"])),
        "nps_trend_minus_usage_trend": x["nps_trend"] / 10.0 - trend,
        "sentiment_x_usage_trend": sent * trend,
        "complaint_and_price_rise": flag((x["complaints_90d"] > 0) & (price > 0),
                                         np.isfinite(price)),
        "silent_with_tickets": ((x["ever_responded"] == 0) & (o["tickets_90d"] > 0)
                                ).astype(np.int64),
        "negative_comment_with_unresolved": flag(
            (sent < -0.05) & (o["tickets_unresolved_90d"] > 0), np.isfinite(sent)),
        "price_topic_x_price_change": x["topic_price_180d"] * price,
        "reliability_topic_x_outage_tickets": x["topic_reliability_180d"]
        * o["outage_tickets_90d"],
        "support_topic_x_unresolved": x["topic_support_180d"] * o["tickets_unresolved_90d"],
    }

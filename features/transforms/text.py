"""Comment sentiment and driver topics from local lexicons (no model, no download).

Sentiment is VADER's compound score (-1 .. +1; the lexicon ships inside the
``vaderSentiment`` wheel), with a small customer-experience amendment: VADER's
general lexicon reads topic words such as "support" as praise and does not know
service failures such as "outage" or "overpriced". Topics are keyword families
per experience driver: a comment scores 1 for a driver it mentions, 0 otherwise,
so averaging over comments gives the share of a customer's comments about that
driver. Each distinct text is scored once: survey tools repeat many short answers.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd

from .schema import DRIVERS

TOPIC_PATTERNS = {
    "support": r"\b(?:support|ticket|tickets|customer service|service desk|help ?desk|agent|"
               r"agents|call(?:s|ed)? back|callback|resolved|unresolved|solv\w*|fix\w*)\b",
    "reliability": r"\b(?:outages?|down|downtime|unreliable|interruptions?|connection|"
                   r"network|dropp?(?:ed|s)?|disconnect\w*|signal|coverage|unstable)\b",
    "price": r"\b(?:price\w*|expensive|bills?|billing|charges?|charged|costs?|costly|paying|"
             r"pay|fees?|money|overpriced|cheaper)\b",
    "delivery": r"\b(?:orders?|deliver\w*|shipment\w*|shipping|shipped|arriv\w*|packages?|"
                r"parcels?|courier)\b",
}
assert set(TOPIC_PATTERNS) == set(DRIVERS)

# Valences on VADER's -4 .. +4 scale, replacing or adding to its lexicon.
CX_LEXICON = {
    # subjects of a comment, not judgements
    "support": 0.0, "solving": 0.0, "credit": 0.0, "increased": -0.5,
    # service failures and their vocabulary
    "outage": -2.0, "outages": -2.0, "downtime": -2.0, "down": -1.2, "unreliable": -2.0,
    "unstable": -1.5, "disconnected": -1.5, "dropped": -1.0, "dropping": -1.0,
    "expensive": -1.5, "overpriced": -2.0, "pricey": -1.0, "overcharged": -2.0,
    "unresolved": -1.8, "unanswered": -1.5, "waiting": -0.8, "waited": -0.8, "nobody": -0.8,
    "late": -1.0, "undelivered": -2.0,
    # good news that negation can turn ("never arrived", "not reliable")
    "arrived": 0.8, "reliable": 1.5, "resolved": 1.2,
}


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(CX_LEXICON)
    return analyzer


def sentiment(texts: pd.Series) -> np.ndarray:
    """VADER compound score per text (distinct texts scored once); NaN for empty."""
    codes, uniques = pd.factorize(texts, use_na_sentinel=True)
    scorer = _analyzer()
    scores = np.array([scorer.polarity_scores(str(u))["compound"] for u in uniques], float)
    return np.where(codes >= 0, scores[np.maximum(codes, 0)] if len(scores) else np.nan, np.nan)


def topics(texts: pd.Series) -> dict[str, np.ndarray]:
    """Per driver, 1.0 if the text mentions it, 0.0 if not, NaN for empty text."""
    missing = texts.isna().to_numpy()
    lower = texts.fillna("").astype(str).str.lower()
    out = {}
    for driver, pattern in TOPIC_PATTERNS.items():
        hit = lower.str.contains(re.compile(pattern), regex=True).to_numpy(float)
        out[driver] = np.where(missing, np.nan, hit)
    return out


def score_comments(texts: pd.Series) -> pd.DataFrame:
    """sentiment and topic_<driver> columns for each comment (NaN rows for no comment)."""
    texts = texts.where(texts.fillna("").astype(str).str.strip() != "")
    codes, uniques = pd.factorize(texts, use_na_sentinel=True)
    unique = pd.Series(uniques, dtype=object)
    scored = pd.DataFrame({"sentiment": sentiment(unique),
                           **{f"topic_{d}": v for d, v in topics(unique).items()}})
    rows = scored.reindex(np.where(codes >= 0, codes, -1)).reset_index(drop=True)
    return rows

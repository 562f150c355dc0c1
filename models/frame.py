"""From a Feast training/scoring frame to the model matrix, the same way everywhere.

String features become pandas categoricals with the categories seen at training
time (``FrameSpec``), so training, batch scoring and the online service encode a
customer identically; unseen categories become missing, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.transforms.schema import FEATURE_SCHEMA

KEYS = ("customer_id", "event_timestamp")


def feature_kinds(columns: list[str] | None = None) -> dict[str, str]:
    """Kind (float/int/string) of every declared feature, optionally restricted to ``columns``."""
    kinds = {c: k for table in FEATURE_SCHEMA.values() for c, k in table.items()}
    return kinds if columns is None else {c: kinds[c] for c in columns}


@dataclass
class FrameSpec:
    """The feature columns of a model and the categories of its string features."""

    features: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, frame: pd.DataFrame, features: list[str]) -> FrameSpec:
        kinds = feature_kinds(features)
        cats = {c: sorted(frame[c].dropna().astype(str).unique().tolist())
                for c in features if kinds[c] == "string"}
        return cls(features=list(features), categories=cats)

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model input: declared columns in order, numeric as float, strings as categories."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise KeyError(f"frame lacks feature columns {missing}")
        out = {}
        for col in self.features:
            if col in self.categories:
                out[col] = pd.Categorical(frame[col].astype("object"),
                                          categories=self.categories[col])
            else:
                out[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
        return pd.DataFrame(out, index=frame.index)

    def to_dict(self) -> dict:
        return {"features": self.features, "categories": self.categories}

    @classmethod
    def from_dict(cls, data: dict) -> FrameSpec:
        return cls(features=list(data["features"]), categories=dict(data["categories"]))

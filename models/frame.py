"""From a Feast training/scoring frame to the model matrix, the same way everywhere.

String features become pandas categoricals with the categories seen at training
time (``FrameSpec``), so training, batch scoring and the online service encode a
customer identically; unseen categories become missing, never a crash.

``FrameSpec.array`` gives the same input as one float64 array in LightGBM's own
encoding of that matrix (category code in the training order, missing/unseen = NaN):
predicting on it skips LightGBM's pandas conversion, which costs more than the trees
on a single customer. Small frames (the service's one customer) are encoded value by
value in Python, large ones column by column; both equal the pandas path exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from features.transforms.schema import ATTRIBUTE_KINDS, FEATURE_SCHEMA, is_attribute

KEYS = ("customer_id", "event_timestamp")
SMALL = 64          # up to this many rows a frame is encoded value by value (no per-column pandas)
_INT_LIMIT = 2 ** 63
_FLOATS = (float, np.floating)
_INTS = (int, np.integer)


def feature_kinds(columns: list[str] | None = None,
                  attributes: dict[str, dict] | None = None) -> dict[str, str]:
    """Kind (float/int/string) of every declared feature, optionally restricted to ``columns``.

    ``attributes``: the company's attribute features and their attribute kinds (``{"kind":
    "categorical", ...}``, from the stored attribute schema): categoricals are strings, the
    rest floats.
    """
    kinds = {c: k for table in FEATURE_SCHEMA.values() for c, k in table.items()}
    kinds |= {c: ATTRIBUTE_KINDS[meta["kind"]] for c, meta in (attributes or {}).items()}
    return kinds if columns is None else {c: kinds[c] for c in columns}


def _attribute_meta(frame: pd.DataFrame, features: list[str], given: dict | None) -> dict:
    """Kind and label of each attribute feature: ``given``, else the frame's ``attrs``
    (``features.store.training_frame``), else the kind read from the column's dtype."""
    known = given if given is not None else frame.attrs.get("attributes", {})
    meta = {}
    for c in features:
        if c in known:
            meta[c] = dict(known[c])
        elif is_attribute(c) and c in frame.columns:
            numeric = pd.api.types.is_numeric_dtype(frame[c].dtype)
            meta[c] = {"kind": "numeric" if numeric else "categorical"}
    return meta


# --------------------------------------------------------------------------- column encoders

def numeric_column(col: pd.Series) -> np.ndarray:
    """A column as float64, exactly ``pd.to_numeric(col, errors="coerce").astype(float64)``.

    Numeric dtypes convert directly (the coercion is the identity there); anything else
    goes through ``pd.to_numeric``.
    """
    dtype = col.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return col.to_numpy(np.float64)
    return pd.to_numeric(col, errors="coerce").to_numpy(np.float64, na_value=np.nan)


@lru_cache(maxsize=256)
def categorical_dtype(categories: tuple) -> pd.CategoricalDtype:
    """The (unordered) dtype of these categories, built once: validating categories costs
    more than encoding a single customer."""
    return pd.CategoricalDtype(list(categories))


def category_codes(col: pd.Series, categories: list) -> np.ndarray:
    """Codes of ``pd.Categorical(col.astype(object), categories=categories)`` (-1 = missing/unseen)."""
    return np.asarray(pd.Categorical(col.astype("object"), categories=categories).codes, dtype=np.int64)


def _plain_number(v) -> bool:
    """A value ``float(v)`` converts as ``pd.to_numeric(...).astype(float64)`` would (bools excluded:
    in an object column pandas keeps them as objects)."""
    if isinstance(v, _FLOATS):
        return True
    return isinstance(v, _INTS) and not isinstance(v, bool | np.bool_) and -_INT_LIMIT <= v < _INT_LIMIT


def _small_numeric(values: np.ndarray, dtype) -> np.ndarray | None:
    """Float64 values of one small column from its object array; None when pandas must decide."""
    if not isinstance(dtype, np.dtype):
        return None
    if dtype.kind in "iuf":
        return np.array(values.tolist(), dtype=np.float64)
    if dtype.kind == "O" and all(v is None or _plain_number(v) for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return None


def _small_codes(values: np.ndarray, categories: list) -> np.ndarray | None:
    """Category codes of one small column by dictionary lookup; None for non-string categories.

    With string categories only string values can match (``pd.Categorical`` compares by
    equality), so anything else (None, NaN, pd.NA, numbers) is -1, as there.
    """
    if not all(isinstance(c, str) for c in categories):
        return None
    lookup = {c: i for i, c in enumerate(categories)}
    return np.array([lookup.get(v, -1) if isinstance(v, str) else -1 for v in values], dtype=np.int64)


# --------------------------------------------------------------------------- spec

@dataclass
class FrameSpec:
    """The feature columns of a model and the categories of its string features."""

    features: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)
    attributes: dict[str, dict] = field(default_factory=dict)  # attribute feature -> kind, label

    @classmethod
    def fit(cls, frame: pd.DataFrame, features: list[str],
            attributes: dict[str, dict] | None = None) -> FrameSpec:
        """Categories of the string features seen in ``frame``; the company's attributes
        (``attributes``, default the frame's ``attrs``) keep their kind and label."""
        meta = _attribute_meta(frame, features, attributes)
        kinds = feature_kinds(features, meta)
        cats = {c: sorted(frame[c].dropna().astype(str).unique().tolist())
                for c in features if kinds[c] == "string"}
        return cls(features=list(features), categories=cats, attributes=meta)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"attributes": {}, **state})   # specs pickled before attributes

    def _check(self, frame: pd.DataFrame, fill: dict | None) -> None:
        missing = [c for c in self.features if c not in frame.columns and c not in (fill or {})]
        if missing:
            raise KeyError(f"frame lacks feature columns {missing}")

    def encoded_columns(self, frame: pd.DataFrame, fill: dict | None = None) -> list[np.ndarray]:
        """Per feature: float64 values (numeric) or int64 category codes (-1 = missing/unseen).

        ``fill``: a value for columns the frame lacks (e.g. the NPS models' touchpoint).
        """
        self._check(frame, fill)
        fill = fill or {}
        n = len(frame)
        if 0 < n <= SMALL:
            return self._small_columns(frame, fill)
        out = []
        for name in self.features:
            col = frame[name] if name in frame.columns else pd.Series([fill[name]] * n, dtype=object)
            if name in self.categories:
                out.append(category_codes(col, self.categories[name]))
            else:
                out.append(numeric_column(col))
        return out

    def _small_columns(self, frame: pd.DataFrame, fill: dict) -> list[np.ndarray]:
        """``encoded_columns`` of a few rows: one object array, then plain Python per value."""
        n = len(frame)
        values = frame.to_numpy(dtype=object)
        position = {c: i for i, c in enumerate(frame.columns)}
        dtypes = frame.dtypes.tolist()
        out = []
        for name in self.features:
            i = position.get(name)
            col = np.full(n, fill.get(name), dtype=object) if i is None else values[:, i]
            dtype = np.dtype(object) if i is None else dtypes[i]
            if name in self.categories:
                enc = _small_codes(col, self.categories[name])
                if enc is None:
                    enc = category_codes(pd.Series(col, dtype=object), self.categories[name])
            else:
                enc = _small_numeric(col, dtype)
                if enc is None:
                    enc = numeric_column(frame[name] if i is not None else pd.Series(col, dtype=object))
            out.append(enc)
        return out

    def array(self, frame: pd.DataFrame, fill: dict | None = None) -> np.ndarray:
        """The model input as a float64 (rows x features) array in LightGBM's encoding of
        ``matrix(frame)``: numbers as floats, strings as their category's position, NaN
        where missing or unseen. Boosters trained on ``matrix`` predict the same from it."""
        cols = self.encoded_columns(frame, fill)
        cat = [j for j, name in enumerate(self.features) if name in self.categories]
        if len(frame) <= SMALL and cols:        # one conversion, not one assignment per column
            stacked = np.array(cols, dtype=np.float64)
            stacked[cat] = np.where(stacked[cat] < 0, np.nan, stacked[cat])
            return np.ascontiguousarray(stacked.T)
        out = np.empty((len(frame), len(self.features)), dtype=np.float64)
        for j, col in enumerate(cols):
            out[:, j] = col
        out[:, cat] = np.where(out[:, cat] < 0, np.nan, out[:, cat])
        return out

    def matrix(self, frame: pd.DataFrame, fill: dict | None = None) -> pd.DataFrame:
        """The model input: declared columns in order, numeric as float, strings as categories."""
        cols = self.encoded_columns(frame, fill)
        out = {}
        for name, col in zip(self.features, cols, strict=True):
            if name in self.categories:
                dtype = categorical_dtype(tuple(self.categories[name]))
                out[name] = pd.Categorical.from_codes(col, dtype=dtype)
            else:
                out[name] = col
        return pd.DataFrame(out, index=frame.index)

    def positions(self, part: FrameSpec) -> np.ndarray | None:
        """Where ``part``'s columns sit in this spec's array, or None when one of them is
        missing here or encoded differently (other categories, or numeric vs string)."""
        index = {c: i for i, c in enumerate(self.features)}
        if any(c not in index or self.categories.get(c) != part.categories.get(c) for c in part.features):
            return None
        return np.array([index[c] for c in part.features], dtype=np.int64)

    def take(self, x: np.ndarray, part: FrameSpec) -> np.ndarray | None:
        """``part.array(frame)`` cut from this spec's ``array(frame)``; None if it cannot be."""
        pos = self.positions(part)
        if pos is None:
            return None
        if len(pos) == x.shape[1] and np.array_equal(pos, np.arange(len(pos))):
            return x
        return np.ascontiguousarray(x[:, pos])

    @classmethod
    def joint(cls, specs: Iterable[FrameSpec]) -> FrameSpec:
        """One spec holding every column of ``specs`` once (first spec's encoding wins), so
        several models' inputs are encoded in one pass and cut out with ``take``."""
        features: list[str] = []
        categories: dict[str, list[str]] = {}
        attributes: dict[str, dict] = {}
        for spec in specs:
            for name in spec.features:
                if name not in features:
                    features.append(name)
                    if name in spec.categories:
                        categories[name] = list(spec.categories[name])
                    if name in spec.attributes:
                        attributes[name] = dict(spec.attributes[name])
        return cls(features=features, categories=categories, attributes=attributes)

    def to_dict(self) -> dict:
        return {"features": self.features, "categories": self.categories,
                "attributes": self.attributes}

    @classmethod
    def from_dict(cls, data: dict) -> FrameSpec:
        return cls(features=list(data["features"]), categories=dict(data["categories"]),
                   attributes=dict(data.get("attributes", {})))


def lightgbm_categories(booster) -> list[list] | None:
    """The categories a LightGBM model was trained on (``pandas_categorical``), per string column."""
    inner = getattr(booster, "booster_", booster)
    return getattr(inner, "pandas_categorical", None)


def check_encoding(spec: FrameSpec, booster) -> None:
    """Refuse to feed ``spec.array`` to a booster that learnt other category codes.

    LightGBM re-maps a pandas frame's categories to the training ones by value; an
    array carries bare codes, so they must mean the same categories.
    """
    trained = lightgbm_categories(booster)
    ours = [list(spec.categories[c]) for c in spec.features if c in spec.categories]
    if trained is not None and [list(c) for c in trained] != ours:
        raise ValueError("the booster's categories (pandas_categorical) differ from its FrameSpec's: "
                         "encode with spec.matrix instead")

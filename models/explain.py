"""Reason codes: why a customer's score is high (or low), in staff's own words.

One function for batch scoring and the service: ``reason_codes`` sums per-feature SHAP
contributions by business concept (``models.concepts``), ranks the concepts and words each
from the customer's own values. Design: docs/models.md#explanations
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from features.transforms.schema import FEATURE_SCHEMA

from .concepts import CONCEPTS, concept_of, join_phrases, phrase_of

DIRECTIONS = {"increase": 1.0, "decrease": -1.0}
EPS = 1e-9            # a concept must move the score by more than this to be a reason
CANDIDATES = 3        # in-concept features tried for the sentence (the first two worded are kept)
PHRASES_PER_REASON = 2
MAX_FEATURES = 3      # features listed per reason (the concept's strongest in its direction)
SMALL = 32            # up to this many rows, clauses are worded row by row (no de-duplication)

_KINDS = {c: k for table in FEATURE_SCHEMA.values() for c, k in table.items()}


@dataclass(slots=True)
class Reason:
    """One reason for a score: the concept, its label, its summed contribution in score
    units (signed: positive pushes the score up), the sentence, and the concept's
    features that push in the reason's direction, strongest first (at most three)."""

    concept: str
    label: str
    impact: float
    sentence: str
    features: tuple[str, ...] = ()


# --------------------------------------------------------------------------- grouping

@dataclass(frozen=True)
class ConceptGroups:
    """The concepts present among a model's columns and which columns belong to each."""

    keys: tuple[str, ...]
    labels: tuple[str, ...]
    members: tuple[np.ndarray, ...]     # column indices per concept
    matrix: np.ndarray                  # (n_features, n_concepts) 0/1 membership


@lru_cache(maxsize=32)
def _groups(names: tuple[str, ...]) -> ConceptGroups:
    of = [concept_of(n) for n in names]
    keys = tuple(k for k in CONCEPTS if k in of)
    members = tuple(np.flatnonzero([c == k for c in of]) for k in keys)
    matrix = np.zeros((len(names), len(keys)))
    for j, cols in enumerate(members):
        matrix[cols, j] = 1.0
    return ConceptGroups(keys, tuple(CONCEPTS[k].label for k in keys), members, matrix)


def concept_groups(feature_names: list[str]) -> ConceptGroups:
    """Concept membership of a model's columns (cached per column list)."""
    return _groups(tuple(feature_names))


def feature_contributions(contributions: np.ndarray, feature_names: list[str]) -> np.ndarray:
    """The (n, n_features) contributions, dropping LightGBM's bias column when present."""
    c = np.asarray(contributions, dtype=np.float64)
    if c.ndim == 1:
        c = c[None, :]
    p = len(feature_names)
    if c.ndim != 2 or c.shape[1] not in (p, p + 1):
        raise ValueError(f"contributions of shape {c.shape} do not match {p} features "
                         f"(expected (n, {p}) or (n, {p + 1}) with the bias last)")
    return c[:, :p]


def concept_contributions(contributions: np.ndarray, feature_names: list[str]) -> pd.DataFrame:
    """Contributions summed by concept: one column per concept present, in score units."""
    phi = feature_contributions(contributions, feature_names)
    groups = concept_groups(feature_names)
    return pd.DataFrame(phi @ groups.matrix, columns=list(groups.keys))


# --------------------------------------------------------------------------- values

class _Columns:
    """The frame's columns as arrays, normalised once: numbers as float (NaN = unknown),
    labels as objects (None = unknown); a column the frame lacks reads as unknown."""

    def __init__(self, frame: pd.DataFrame):
        self.frame, self.n, self.cache = frame, len(frame), {}

    def get(self, name: str) -> np.ndarray:
        if name not in self.cache:
            self.cache[name] = self._load(name)
        return self.cache[name]

    def _load(self, name: str) -> np.ndarray:
        if name not in self.frame.columns:
            return np.full(self.n, np.nan)
        s = self.frame[name]
        numeric = pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
        if _KINDS.get(name) == "string" or (not numeric and name not in _KINDS):
            arr = s.astype(object).to_numpy(copy=True)
            arr[pd.isna(arr)] = None
            return arr
        return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _phrase_batch(feature: str, rows: np.ndarray, cols: _Columns,
                  attributes: dict | None = None) -> np.ndarray:
    """The clause of ``feature`` for each of ``rows``, worded once per distinct input."""
    out = np.full(len(rows), None, dtype=object)
    phrase = phrase_of(feature, attributes)
    if phrase is None or not len(rows):
        return out
    arrays = [cols.get(c)[rows] for c in phrase.inputs]
    if len(rows) <= SMALL:          # online: word each row directly
        out[:] = [phrase.fn(*(_py(a[i]) for a in arrays)) for i in range(len(rows))]
        return out
    _, first, inverse = np.unique(_combined_codes(arrays), return_index=True, return_inverse=True)
    texts = np.array([phrase.fn(*(_py(a[i]) for a in arrays)) for i in first] + [None], dtype=object)
    return texts[:-1][inverse.ravel()]


def _combined_codes(arrays: list[np.ndarray]) -> np.ndarray:
    """One integer per distinct combination of the arrays' values (NaN/None count as a value),
    re-numbered after each column so the codes never overflow."""
    key = np.zeros(len(arrays[0]), dtype=np.int64)
    for a in arrays:
        codes, uniques = pd.factorize(a, use_na_sentinel=True)
        key = key * (len(uniques) + 1) + (codes + 1)
        key = pd.factorize(key)[0] if len(arrays) > 1 else key
    return key


def _py(v):
    """A plain Python value for a phrase: float (NaN kept), str, or None."""
    if v is None:
        return None
    if isinstance(v, np.floating | np.integer):
        return float(v)
    return v


def _name_tuples(fidx: np.ndarray, npos: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Per row, the tuple of the first ``npos`` feature names; built once per distinct
    tuple and shared (tuples are immutable)."""
    count = np.minimum(npos, fidx.shape[1])
    key = count.astype(np.int64)
    for j in range(fidx.shape[1]):
        key = key * (len(names) + 1) + np.where(j < count, fidx[:, j] + 1, 0)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    tuples = np.empty(len(first), dtype=object)
    for u, i in enumerate(first):
        tuples[u] = tuple(names[fidx[i, :count[i]]].tolist())
    return tuples[inverse.ravel()]


def _join_rows(cand: np.ndarray, label: str) -> np.ndarray:
    """``join_phrases`` of each row of clauses, computed once per distinct combination."""
    if len(cand) <= SMALL:
        return np.array([join_phrases(c, label, PHRASES_PER_REASON) for c in cand] + [None],
                        dtype=object)[:-1]
    key = _combined_codes([cand[:, j] for j in range(cand.shape[1])])
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    texts = np.array([join_phrases(cand[i], label, PHRASES_PER_REASON) for i in first], dtype=object)
    return texts[inverse.ravel()]


# --------------------------------------------------------------------------- ranking

@dataclass
class _Ranked:
    groups: ConceptGroups
    concept: np.ndarray          # (n, k) concept index
    impact: np.ndarray           # (n, k) summed contribution (signed, score units)
    valid: np.ndarray            # (n, k) the concept pushes in the requested direction
    sentence: np.ndarray         # (n, k) object
    features: np.ndarray | None  # (n, k) object: tuples of feature names


def _rank(contributions, feature_names, frame, top, direction, with_features,
          attributes=None) -> _Ranked:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, not {direction!r}")
    phi = feature_contributions(contributions, feature_names)
    n = phi.shape[0]
    if len(frame) != n:
        raise ValueError(f"frame has {len(frame)} rows but contributions {n}")
    groups = concept_groups(feature_names)
    sign = DIRECTIONS[direction]
    grouped = phi @ groups.matrix
    signed = sign * grouped
    k = max(0, min(int(top), len(groups.keys)))
    if k < len(groups.keys):
        part = np.argpartition(-signed, k - 1, axis=1)[:, :k] if k else np.zeros((n, 0), np.int64)
        sub = np.take_along_axis(signed, part, axis=1)
        concept = np.take_along_axis(part, np.argsort(-sub, axis=1, kind="stable"), axis=1)
    else:
        concept = np.argsort(-signed, axis=1, kind="stable")
    valid = np.take_along_axis(signed, concept, axis=1) > EPS
    impact = np.take_along_axis(grouped, concept, axis=1)
    sentence = np.full((n, k), None, dtype=object)
    features = np.full((n, k), None, dtype=object) if with_features else None
    names = np.asarray(feature_names, dtype=object)
    cols = _Columns(frame)
    signed_phi = sign * phi
    for ci, members in enumerate(groups.members):
        rows, slots = np.nonzero((concept == ci) & valid)
        if not len(rows):
            continue
        sub = signed_phi[rows[:, None], members[None, :]]
        order = np.argsort(-sub, axis=1, kind="stable")
        strength = np.take_along_axis(sub, order, axis=1)
        fidx = members[order]
        npos = (strength > EPS).sum(axis=1)
        width = min(CANDIDATES, len(members))
        cand = np.full((len(rows), width), None, dtype=object)
        for j in range(width):
            at = np.flatnonzero(npos > j)
            fj = fidx[at, j]
            for f in np.unique(fj):
                sel = at[fj == f]
                cand[sel, j] = _phrase_batch(feature_names[f], rows[sel], cols, attributes)
        sentence[rows, slots] = _join_rows(cand, groups.labels[ci])
        if features is not None:
            features[rows, slots] = _name_tuples(fidx[:, :MAX_FEATURES], npos, names)
    return _Ranked(groups, concept, impact, valid, sentence, features)


def reason_codes(contributions: np.ndarray, feature_names: list[str], frame: pd.DataFrame,
                 top: int = 3, direction: str = "increase",
                 attributes: dict | None = None) -> list[list[Reason]]:
    """The top reasons of each row, strongest first.

    ``contributions``: (n, n_features) or (n, n_features + 1) with the bias last, in the
    model's raw score units; ``frame``: the same n customers (raw feature frame or model
    matrix) whose values word the sentences, matched by position. ``direction="increase"``
    gives the concepts pushing the score up (churn risk factors), ``"decrease"`` those
    pulling it down (protective factors). A row gets fewer than ``top`` reasons when fewer
    concepts push its score that way. ``attributes``: kind and label of the company's own
    attribute features (``FrameSpec.attributes``), which the sentences name by their label.
    """
    r = _rank(contributions, feature_names, frame, top, direction, with_features=True,
              attributes=attributes)
    keys, labels = r.groups.keys, r.groups.labels
    n, k = r.concept.shape
    ok = r.valid.ravel()
    concept = r.concept.ravel()[ok]
    flat = list(map(Reason, np.asarray(keys, dtype=object)[concept].tolist(),
                    np.asarray(labels, dtype=object)[concept].tolist(), r.impact.ravel()[ok].tolist(),
                    r.sentence.ravel()[ok].tolist(), r.features.ravel()[ok].tolist()))
    if k and ok.all():
        return [flat[i:i + k] for i in range(0, n * k, k)]
    ends = np.cumsum(r.valid.sum(axis=1)).tolist()
    return [flat[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def reasons_frame(contributions: np.ndarray, feature_names: list[str], frame: pd.DataFrame,
                  top: int = 3, direction: str = "increase",
                  attributes: dict | None = None) -> pd.DataFrame:
    """Reasons as columns for batch writing, indexed like ``frame``: ``reason_1`` ..
    ``reason_k`` (sentences), ``reason_j_concept`` and ``reason_j_impact``; empty where a
    row has fewer reasons."""
    r = _rank(contributions, feature_names, frame, top, direction, with_features=False,
              attributes=attributes)
    keys = np.asarray(r.groups.keys + (None,), dtype=object)
    data = {}
    for j in range(r.concept.shape[1]):
        ok = r.valid[:, j]
        data[f"reason_{j + 1}"] = np.where(ok, r.sentence[:, j], None)
        data[f"reason_{j + 1}_concept"] = keys[np.where(ok, r.concept[:, j], -1)]
        data[f"reason_{j + 1}_impact"] = np.where(ok, r.impact[:, j], np.nan)
    return pd.DataFrame(data, index=frame.index)

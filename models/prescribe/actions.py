"""Action catalogue: what reps can do, for whom, at what cost and rep time.

The catalogue lives in ``configs/actions.yaml`` and is validated here, at the edge: an
error names the file, the action and the field (``configs/actions.yaml: action
'discount_offer': cost: must be >= 0``), so a typo in a rule never reaches a plan.

Eligibility rules are a tiny grammar, never evaluated as code: each item of
``eligible_if`` is ``<feature> <op> <literal>`` (ops ``== != < <= > >= in`` and ``not
in``; literals are numbers, quoted strings or a list of them), or several such
conditions joined by ``or``. All items must hold. A condition on a missing value
(NaN / null) is false, so ``plan != 'premium'`` excludes a customer whose plan is unknown:
no action is proposed on facts we do not have. Recency ("not twice within N days") is
not a condition but ``limits.min_days_between``, because a never-contacted customer has
no ``days_since_last_action`` and must pass.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from configs.settings import PROJECT_ROOT
from features.transforms.schema import FEATURE_SCHEMA
from models.concepts import CONCEPTS, OTHER

CHANNELS = ("call", "email", "sms", "app", "letter")
OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")
# Scores the batch scorer puts beside the features; rules may use them too.
SCORE_COLUMNS = {"p_churn": "float", "value_at_risk": "float"}
FEATURE_KINDS: dict[str, str] = {
    **{c: k for table in FEATURE_SCHEMA.values() for c, k in table.items()}, **SCORE_COLUMNS}
DRIVER_CONCEPTS = tuple(k for k in CONCEPTS if k != OTHER)

_ATOM = re.compile(r"^\s*(?P<feature>[A-Za-z_]\w*)\s*(?P<op>==|!=|<=|>=|<|>|not\s+in\b|in\b)"
                   r"\s*(?P<value>.*?)\s*$")
_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}


class CatalogueError(ValueError):
    """The catalogue file is unreadable or breaks a rule; the message names file, action, field."""


# --------------------------------------------------------------------------- conditions

@dataclass(frozen=True)
class Condition:
    """One ``<feature> <op> <literal>`` test, evaluated column-wise."""

    feature: str
    op: str
    value: float | str | tuple

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """True where the condition holds; always False where the feature is missing."""
        col = frame[self.feature]
        present = col.notna().to_numpy()
        if FEATURE_KINDS[self.feature] != "string":
            col = pd.to_numeric(col, errors="coerce")
        if self.op in ("in", "not in"):
            hit = col.isin(list(self.value)).to_numpy()
            return present & (hit if self.op == "in" else ~hit)
        if FEATURE_KINDS[self.feature] == "string":
            col = col.astype(object)
        return present & np.asarray(_COMPARE[self.op](col, self.value), dtype=bool)


@dataclass(frozen=True)
class Rule:
    """One ``eligible_if`` item: holds when any of its conditions holds."""

    text: str
    any_of: tuple[Condition, ...]

    @property
    def features(self) -> set[str]:
        return {c.feature for c in self.any_of}

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros(len(frame), dtype=bool)
        for cond in self.any_of:
            out |= cond.mask(frame)
        return out


def split_or(text: str) -> list[str]:
    """Split on the word ``or`` outside quotes (a quoted label may contain it)."""
    parts, quote, start, i = [], None, 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif re.match(r"\sor\s", text[i:i + 4]):
            parts.append(text[start:i])
            start = i = i + 3
            continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_condition(text: str) -> Condition:
    """A ``Condition`` from text; ValueError says what is wrong in words."""
    m = _ATOM.match(text)
    if not m:
        raise ValueError(f"cannot read condition {text!r}: expected '<feature> <op> <value>' "
                         f"with op one of {', '.join(OPERATORS)}")
    feature, op, raw = m["feature"], re.sub(r"\s+", " ", m["op"]), m["value"]
    if feature not in FEATURE_KINDS:
        raise ValueError(f"unknown feature {feature!r} in condition {text!r}")
    try:
        value = ast.literal_eval(raw) if raw else None
    except (ValueError, SyntaxError):
        raise ValueError(f"cannot read the value {raw!r} in condition {text!r}: use a number, a "
                         "quoted string or a list of them") from None
    return Condition(feature, op, _check_value(feature, op, value, text))


def _check_value(feature: str, op: str, value, text: str):
    """The literal fits the operator and the feature's kind (text vs number)."""
    is_text = FEATURE_KINDS[feature] == "string"
    if op in ("in", "not in"):
        if not isinstance(value, list | tuple | set) or not value:
            raise ValueError(f"'{op}' needs a non-empty list of values in condition {text!r}")
        items = tuple(value)
    else:
        if is_text and op not in ("==", "!="):
            raise ValueError(f"operator {op!r} does not apply to the text feature {feature!r} "
                             f"in condition {text!r}")
        items = (value,)
    for v in items:
        ok = isinstance(v, str) if is_text else (isinstance(v, int | float) and not isinstance(v, bool))
        if not ok:
            kind = "a quoted string" if is_text else "a number"
            raise ValueError(f"{feature!r} compares with {kind}, got {v!r} in condition {text!r}")
    return items if op in ("in", "not in") else value


def parse_rule(text: str) -> Rule:
    """An ``eligible_if`` item: one condition or several joined by ``or``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a condition must be a non-empty string")
    return Rule(text, tuple(parse_condition(p) for p in split_or(text)))


def _valid_rule(text: str) -> str:
    parse_rule(text)
    return text


# --------------------------------------------------------------------------- catalogue

class ActionLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_per_cycle: int | None = Field(None, ge=0)      # across all customers, per cycle
    min_days_between: float | None = Field(None, ge=0)  # vs days_since_last_action


class Action(BaseModel):
    """One catalogue entry (see configs/actions.yaml for the meaning of each field)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1)
    channel: Literal["call", "email", "sms", "app", "letter"]
    cost: float = Field(ge=0)
    handling_minutes: float = Field(ge=0)
    eligible_if: list[Annotated[str, AfterValidator(_valid_rule)]] = []
    addresses: list[str] = Field(min_length=1)
    limits: ActionLimits = ActionLimits()

    @field_validator("addresses")
    @classmethod
    def _known_concepts(cls, v: list[str]) -> list[str]:
        unknown = [c for c in v if c not in DRIVER_CONCEPTS]
        if unknown:
            raise ValueError(f"unknown concept {unknown[0]!r}: use one of {', '.join(DRIVER_CONCEPTS)}")
        return v

    @property
    def rules(self) -> list[Rule]:
        return [parse_rule(t) for t in self.eligible_if]

    @property
    def features(self) -> set[str]:
        """Every column the eligibility rules read."""
        return set().union(*(r.features for r in self.rules))


@dataclass(frozen=True)
class Catalogue:
    """The validated actions, in file order, with vector views the arbitration uses."""

    actions: tuple[Action, ...]
    source: str = "<memory>"

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, action_id: str) -> Action:
        for a in self.actions:
            if a.id == action_id:
                return a
        raise KeyError(f"{self.source}: no action {action_id!r}")

    @property
    def ids(self) -> list[str]:
        return [a.id for a in self.actions]

    def column(self, name: str) -> np.ndarray:
        """One numeric field per action, in catalogue order (cost, handling_minutes)."""
        return np.array([float(getattr(a, name)) for a in self.actions])

    def max_per_cycle(self) -> np.ndarray:
        """Count cap per action; inf where none."""
        return np.array([np.inf if a.limits.max_per_cycle is None else float(a.limits.max_per_cycle)
                         for a in self.actions])

    def min_days_between(self) -> np.ndarray:
        """Days an action must wait after the customer's last action; 0 where no limit."""
        return np.array([a.limits.min_days_between or 0.0 for a in self.actions])


def _display(path: Path) -> str:
    """A path as people read it: relative to the project when inside it."""
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _explain(err: dict) -> str:
    """A pydantic error in plain words: ``cost: must be >= 0``."""
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
    ctx, kind = err.get("ctx") or {}, err["type"]
    msg = {
        "greater_than_equal": lambda: f"must be >= {ctx.get('ge'):g}",
        "greater_than": lambda: f"must be > {ctx.get('gt'):g}",
        "missing": lambda: "is required",
        "extra_forbidden": lambda: "unknown field",
        "literal_error": lambda: f"must be one of {ctx.get('expected')}",
        "string_pattern_mismatch": lambda: "must be lowercase letters, digits and underscores",
        "value_error": lambda: str(ctx.get("error", err["msg"])),
    }.get(kind, lambda: err["msg"])()
    return f"{loc}: {msg}" if loc else msg


def catalogue_from_entries(entries: list, source: str = "<memory>") -> Catalogue:
    """Validate raw entries (the YAML ``actions`` list); all problems reported at once."""
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"{source}: expected a non-empty list under 'actions'")
    problems, actions = [], []
    for i, entry in enumerate(entries):
        name = entry.get("id") if isinstance(entry, dict) else None
        where = f"action {name!r}" if isinstance(name, str) else f"action #{i + 1}"
        if not isinstance(entry, dict):
            problems.append(f"{source}: {where}: expected a mapping of fields")
            continue
        try:
            actions.append(Action.model_validate(entry))
        except ValidationError as exc:
            problems += [f"{source}: {where}: {_explain(e)}" for e in exc.errors()]
    seen: set[str] = set()
    for a in actions:
        if a.id in seen:
            problems.append(f"{source}: action {a.id!r}: id: duplicate id")
        seen.add(a.id)
    if problems:
        raise CatalogueError("\n".join(problems))
    return Catalogue(tuple(actions), source)


def load_catalogue(path: Path | str) -> Catalogue:
    """Read and validate the catalogue file (``settings.prescribe.actions_file``)."""
    path = Path(path)
    source = _display(path)
    if not path.exists():
        raise FileNotFoundError(f"action catalogue not found: {source}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or "actions" not in data:
        raise CatalogueError(f"{source}: expected a mapping with an 'actions' list")
    extra = sorted(set(data) - {"actions"})
    if extra:
        raise CatalogueError(f"{source}: unknown top-level key {extra[0]!r}")
    return catalogue_from_entries(data["actions"], source)


def eligibility(catalogue: Catalogue, features: pd.DataFrame) -> pd.DataFrame:
    """Customers x actions: True where every ``eligible_if`` rule of the action holds.

    Vectorised per condition. A rule on a missing value is false (see the module doc);
    an action without rules is open to everyone. Recency limits are applied by the
    arbitration, which knows the latest contacts.
    """
    out = {}
    for action in catalogue:
        missing = sorted(action.features - set(features.columns))
        if missing:
            raise ValueError(f"{catalogue.source}: action {action.id!r}: eligible_if reads "
                             f"{missing[0]!r}, which is not in the features frame")
        ok = np.ones(len(features), dtype=bool)
        for rule in action.rules:
            ok &= rule.mask(features)
        out[action.id] = ok
    return pd.DataFrame(out, index=features.index, columns=catalogue.ids)

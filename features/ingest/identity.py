"""Identity resolution (data contract rules 1-5), vectorized.

1. identifiers are normalised: e-mail and app id trimmed and lower-cased, phone
   numbers reduced to their last ``phone_digits`` digits;
2. a survey response is matched on the identifier of its channel, a complaint on
   its ``contact_type``;
3. an identifier of no customer is ``unknown <kind>``, one shared by two or more
   customers ``ambiguous <kind>`` (never guessed);
4. a resolved response is linked to the latest invitation of that customer for the
   same ``survey_id`` sent at or before the response (``merge_asof``);
5. one response per customer and invitation: the earliest (ties: lowest
   ``response_id``) is kept, later ones are ``duplicate response``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.ingest.schemas import STRING

#: identifier kinds, as named in reasons and in the report; value = crm_customers column
KIND_COLUMNS = {"email": "email", "phone": "phone", "app_id": "app_id"}
#: survey channel -> identifier kind
RESPONSE_KINDS = {"email": "email", "sms": "phone", "app": "app_id"}
#: complaint contact_type -> identifier kind
COMPLAINT_KINDS = {"email": "email", "phone": "phone"}

RESOLVED, UNKNOWN, AMBIGUOUS = "resolved", "unknown", "ambiguous"


def normalise_email(values: pd.Series) -> pd.Series:
    return _blank_to_na(values.astype(STRING).str.strip().str.lower())


def normalise_app_id(values: pd.Series) -> pd.Series:
    return normalise_email(values)


def normalise_phone(values: pd.Series, digits: int = 10) -> pd.Series:
    """Digits only, the last ``digits`` of them: ``+1 (212) 555-0134`` -> ``2125550134``."""
    only_digits = values.astype(STRING).str.replace(r"\D+", "", regex=True)
    return _blank_to_na(only_digits.str[-digits:])


def _blank_to_na(values: pd.Series) -> pd.Series:
    return values.where(values.ne("").fillna(False).astype(bool), None)


def normalise_kind(values: pd.Series, kind: str, phone_digits: int = 10) -> pd.Series:
    if kind == "phone":
        return normalise_phone(values, phone_digits)
    return normalise_email(values) if kind == "email" else normalise_app_id(values)


def identifier_bucket(keys: pd.Series, buckets: int) -> np.ndarray:
    """Each normalised identifier's bucket, 0 .. buckets-1 (SipHash with a fixed key, the
    same on every host): a cluster resolves an identifier where all its owners are."""
    values = np.asarray(keys.astype(object).where(keys.notna(), None), dtype=object)
    return (pd.util.hash_array(values) % np.uint64(buckets)).astype(np.int64)


def build_identifier_index(
    customers: pd.DataFrame, phone_digits: int = 10
) -> dict[str, pd.DataFrame]:
    """Per kind, a frame indexed by normalised identifier with ``n_customers`` sharing it
    and ``customer_id`` (None when shared). ``customers`` has one row per customer."""
    index = {}
    for kind, column in KIND_COLUMNS.items():
        keys = normalise_kind(customers[column], kind, phone_digits)
        present = keys.notna().to_numpy(dtype=bool)
        codes, uniques = pd.factorize(keys[present])
        n = np.bincount(codes, minlength=len(uniques)).astype(np.int64)
        first = np.unique(codes, return_index=True)[1]  # first row of each key
        ids = customers["customer_id"][present].to_numpy(dtype=object)[first]
        index[kind] = pd.DataFrame(
            {"customer_id": np.where(n == 1, ids, None), "n_customers": n},
            index=pd.Index(np.asarray(uniques, dtype=object)),
        )
    return index


def resolve(
    identifiers: pd.Series,
    kinds: pd.Series,
    index: dict[str, pd.DataFrame],
    phone_digits: int = 10,
) -> pd.DataFrame:
    """Per row: ``kind``, ``customer_id`` (None unless resolved), ``n_customers`` owning the
    identifier and ``status`` (resolved / unknown / ambiguous)."""
    kinds = kinds.astype(object)
    customer = np.full(len(identifiers), None, dtype=object)
    owners = np.zeros(len(identifiers), dtype=np.int64)
    for kind, lookup in index.items():
        mask = (kinds == kind).to_numpy(dtype=bool)
        if not mask.any():
            continue
        keys = normalise_kind(identifiers[mask], kind, phone_digits).astype(object)
        pos = lookup.index.get_indexer(keys)
        hit = pos >= 0
        owners[np.flatnonzero(mask)[hit]] = lookup["n_customers"].to_numpy()[pos[hit]]
        customer[np.flatnonzero(mask)[hit]] = lookup["customer_id"].to_numpy()[pos[hit]]
    status = np.where(owners == 0, UNKNOWN, np.where(owners == 1, RESOLVED, AMBIGUOUS))
    return pd.DataFrame(
        {"kind": kinds.to_numpy(), "customer_id": customer, "n_customers": owners,
         "status": status},
        index=identifiers.index,
    )


def identity_reasons(resolved: pd.DataFrame, column: str) -> pd.Series:
    """Reason text for unresolved rows: ``respondent: ambiguous phone (shared by 2 customers)``."""
    kind = resolved["kind"].astype(str)
    unknown = f"{column}: unknown " + kind
    ambiguous = (
        f"{column}: ambiguous " + kind
        + " (shared by " + resolved["n_customers"].astype(str) + " customers)"
    )
    text = np.where(resolved["status"] == UNKNOWN, unknown, ambiguous)
    return pd.Series(np.where(resolved["status"] == RESOLVED, "", text), index=resolved.index)


def link_invitations(responses: pd.DataFrame, invitations: pd.DataFrame) -> pd.Series:
    """``invitation_id`` of the latest invitation of the same customer and survey sent at or
    before ``responded_at`` (None without one); ties in ``sent_at``: highest invitation_id."""
    out = np.full(len(responses), None, dtype=object)
    if responses.empty or invitations.empty:
        return pd.Series(out, index=responses.index, name="invitation_id")
    by = ["customer_id", "survey_id"]
    left = responses[[*by, "responded_at"]].astype({c: object for c in by})
    left = left.assign(_pos=np.arange(len(responses)))
    right = invitations[["invitation_id", *by, "sent_at"]].astype(
        {c: object for c in ["invitation_id", *by]}
    )
    left = left.sort_values("responded_at", kind="stable")
    right = right.sort_values(["sent_at", "invitation_id"], kind="stable")
    linked = pd.merge_asof(
        left,
        right,
        left_on="responded_at",
        right_on="sent_at",
        by=by,
        direction="backward",
        allow_exact_matches=True,
    )
    found = linked["invitation_id"].to_numpy(dtype=object)
    out[linked["_pos"].to_numpy()] = np.where(pd.isna(found), None, found)
    return pd.Series(out, index=responses.index, name="invitation_id")


def duplicate_responses(linked: pd.DataFrame) -> pd.Series:
    """For each response, the ``response_id`` kept for its (customer, invitation) when it
    is not itself the kept one, else None. Kept: earliest ``responded_at``, then lowest id."""
    order = linked.sort_values(["customer_id", "invitation_id", "responded_at", "response_id"])
    groups = order.groupby(["customer_id", "invitation_id"], sort=False)["response_id"]
    kept = groups.transform("first")
    later = groups.cumcount() > 0
    return kept.where(later, None).reindex(linked.index)

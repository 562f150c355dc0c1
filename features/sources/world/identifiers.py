"""Numbered identifiers of the exports, shifted when chunks simulated apart are combined.

Tickets, orders, invoices, invitations, responses, complaints and interventions are numbered
across the world's chunks (``T000000123``: a prefix and 9 digits, ``export.format_ids``).
A chunk simulated on its own numbers from 0; when the chunks' tables are combined, each
identifier of a known prefix is shifted by the count the earlier chunks used, which gives
the identifiers the in-process run writes (``parallel``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ID_WIDTH = 9                        # digits of a numbered identifier (export.format_ids)
# columns holding identifiers drawn from the sink's running sequences
ID_COLUMNS = {
    "billing_invoices": ("invoice_id",), "orders": ("order_id",), "support_tickets": ("ticket_id",),
    "survey_invitations": ("invitation_id", "trigger_id"), "survey_truth": ("invitation_id",),
    "survey_responses": ("response_id",), "complaints": ("complaint_id",),
    "interventions": ("intervention_id",), "intervention_effects": ("intervention_id",),
}


def renumber(tab: pa.Table, columns: Iterable[str], offsets: dict[str, int]) -> pa.Table:
    """Shift identifiers ``<prefix><9 digits>`` by the earlier chunks' count of ``prefix``;
    nulls and identifiers of other forms (a planned action's ``plan-...``) stay as they are."""
    if not any(offsets.values()):
        return tab
    for name in columns:
        i = tab.schema.get_field_index(name)
        tab = tab.set_column(i, name, _shift(tab.column(name).combine_chunks(), offsets))
    return tab


POWERS = 10 ** np.arange(ID_WIDTH - 1, -1, -1, dtype=np.int64)


def _shift(ids: pa.Array, offsets: dict[str, int]) -> pa.Array:
    """In place on the string bytes: an identifier keeps its length, only its digits change
    (half the cost of copying a table, where string functions took as long again)."""
    if ids.type != pa.string():
        return _shift_strings(ids, offsets)
    n = len(ids)
    validity, offs_buf, data_buf = ids.buffers()
    if data_buf is None:
        return ids
    offs = np.frombuffer(offs_buf, np.int32, count=n + 1, offset=ids.offset * 4)
    length = np.diff(offs)
    valid = ~np.asarray(ids.is_null(), bool) if ids.null_count else np.ones(n, bool)
    data = np.frombuffer(data_buf, np.uint8).copy()
    changed = False
    by_length: dict[int, dict[bytes, int]] = {}
    for prefix, shift in offsets.items():
        if shift:
            head = prefix.encode()
            by_length.setdefault(len(head), {})[head] = shift
    for size, shifts in by_length.items():
        rows = np.flatnonzero(valid & (length == size + ID_WIDTH))
        if not len(rows):
            continue
        at = offs[rows][:, None] + np.arange(size + ID_WIDTH)
        block = data[at]
        heads = np.ascontiguousarray(block[:, :size]).view(f"S{size}").ravel()
        seen = heads[:1] if (heads == heads[0]).all() else np.unique(heads)   # one per row group, mostly
        shift = np.zeros(len(rows), np.int64)
        for head in seen:
            shift[heads == head] = shifts.get(bytes(head), 0)
        digits = block[:, size:]
        ok = (shift > 0) & ((digits >= 48) & (digits <= 57)).all(axis=1)
        if not ok.any():
            continue
        number = (digits[ok] - 48).astype(np.int64) @ POWERS + shift[ok]
        if number.max() >= 10 ** ID_WIDTH:   # a longer identifier: not in place
            return _shift_strings(ids, offsets)
        data[at[ok][:, size:]] = ((number[:, None] // POWERS) % 10 + 48).astype(np.uint8)
        changed = True
    if not changed:
        return ids
    return pa.Array.from_buffers(pa.string(), n, [validity, offs_buf, pa.py_buffer(data)],
                                 offset=ids.offset)


def _shift_strings(ids: pa.Array, offsets: dict[str, int]) -> pa.Array:
    """The same with Arrow's string functions (any identifier length)."""
    prefix = pc.utf8_slice_codeunits(ids, 0, -ID_WIDTH)
    digits = pc.utf8_slice_codeunits(ids, -ID_WIDTH)
    known = [p for p, n in offsets.items() if n]
    shift = np.zeros(len(ids), np.int64)
    hit = np.zeros(len(ids), bool)
    for p in known:
        match = pc.and_kleene(pc.equal(prefix, p), pc.utf8_is_digit(digits))
        match = pc.fill_null(match, False).to_numpy(zero_copy_only=False)
        shift[match] = offsets[p]
        hit |= match
    if not hit.any():
        return ids
    number = pc.cast(pc.if_else(pa.array(hit), digits, "0"), pa.int64()).to_numpy() + shift
    text = pc.utf8_lpad(pa.array(number).cast(pa.string()), width=ID_WIDTH, padding="0")
    shifted = pc.binary_join_element_wise(prefix, text, "")
    return pc.if_else(pa.array(hit), shifted, ids)

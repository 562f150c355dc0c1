"""The impact report in words: the short table `cem impact` prints and the page's cells."""

from __future__ import annotations

import math

from models.impact.intervals import OK
from models.impact.report import ImpactReport, status_text


def effect_cell(effect, lo, hi, status: str) -> str:
    """``-2.1 pp [-3.4, -0.8]`` or the reason there is no number."""
    if status != OK or effect is None or not math.isfinite(effect):
        return status_text(status)
    return f"{100 * effect:+.1f} pp [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def value_cell(value, lo, hi, status: str) -> str:
    if status != OK or value is None or not math.isfinite(value):
        return status_text(status)
    return f"{value:+,.2f} [{lo:+,.2f}, {hi:+,.2f}]"


def summary_lines(report: ImpactReport) -> list[str]:
    """Cumulative effect per action, the slices' value, and how many cycles are pending."""
    meta = report.meta
    lines = [f"impact report as of {meta['data_end']}: {meta['runs']} scoring runs, outcome window "
             f"{meta['horizon_days']} days, estimator {meta['estimator'].replace('_', ' ')}"]
    cycles = report.effects[report.effects["scope"] == "cycle"]
    pending = cycles[cycles["status"] == "pending"]
    lines.append(f"cycles matured: {cycles.loc[cycles['status'] != 'pending', 'cycle'].nunique()}, "
                 f"pending: {len(pending)}")
    lines += _table(report.cumulative(), "no matured cycle yet: effects are pending",
                    ("action", "treated", "hold-out", "churn treated - hold-out (90 %)"),
                    lambda r: (r.action, r.n_treated, r.n_control,
                               effect_cell(r.effect, r.lo90, r.hi90, r.status)))
    lines += _table(report.slices[report.slices["scope"] == "cumulative"],
                    "slices: no matured cycle that applied the comparison slices",
                    ("slice vs no action", "customers", "control", "value per customer (90 %)"),
                    lambda r: (r.slice, r.n, r.n_control,
                               value_cell(r.value_per_customer, r.lo90, r.hi90, r.status)))
    return lines


def _table(frame, empty: str, header: tuple, cells) -> list[str]:
    """A fixed-width table of ``frame``'s rows (``cells``: name, count, count, text), or ``empty``."""
    if frame.empty:
        return [empty]
    name, a, b, text = header
    out = [f"{name:<24}{a:>9}{b:>10}  {text}"]
    for r in frame.itertuples(index=False):
        label, n1, n2, cell = cells(r)
        out.append(f"{label:<24}{n1:>9,}{n2:>10,}  {cell}")
    return out


_SECTION_CACHE: dict = {}   # folder -> (mtime of report.json, section): the page re-reads on change only


def page_section(folder) -> dict | None:
    """What the manager's page shows: the saved report's cumulative tables, the plot and its
    date; None when no report was saved. Read from disk only when the report file changed."""
    from models.impact.report import REPORT_FILE, load_report

    path = folder / REPORT_FILE
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    cached = _SECTION_CACHE.get(str(folder))
    if cached and cached[0] == stamp:
        return cached[1]
    try:
        body = load_report(folder)
    except (OSError, ValueError):   # unreadable: the page still renders, without the section
        return None
    if body is None:
        return None
    effects = [dict(r, cell=effect_cell(r["effect"], r["lo90"], r["hi90"], r["status"]))
               for r in body["effects"] if r["scope"] == "cumulative"]
    slices = [dict(r, cell=value_cell(r["value_per_customer"], r["lo90"], r["hi90"], r["status"]))
              for r in body["slices"] if r["scope"] == "cumulative"]
    cycles = [r for r in body["effects"] if r["scope"] == "cycle" and r["action"] == "all"]
    section = {"meta": body["meta"], "effects": effects, "slices": slices, "png": body.get("png"),
               "matured": sum(r["status"] != "pending" for r in cycles),
               "pending": sum(r["status"] == "pending" for r in cycles)}
    _SECTION_CACHE[str(folder)] = (stamp, section)
    return section

"""Seasonally adjusted usage: a customer's month against their usual, net of the calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.transforms.events import MonthGrid
from features.transforms.operations import Operations, seasonally_adjusted


def _ops_with_usage(units: np.ndarray) -> Operations:
    """An Operations whose only source is a usage grid (customers x months from 2024-01)."""
    n, months = units.shape
    code = np.repeat(np.arange(n), months)
    month = pd.Series(np.tile(pd.date_range("2024-01-01", periods=months, freq="MS"), n))
    ops = Operations.__new__(Operations)
    ops.usage = MonthGrid(code, month, n, units=units.ravel())
    ops.usage.values["seasonal"] = seasonally_adjusted(ops.usage.values["units"])
    return ops


def test_seasonal_swings_shared_by_everyone_cancel_out():
    season = 1 + 0.2 * np.sin(np.arange(12) / 12 * 2 * np.pi)
    units = np.outer([40.0, 50.0, 60.0, 80.0], season)
    adjusted = seasonally_adjusted(units)
    assert np.allclose(adjusted / adjusted[:, :1], 1.0)


def test_a_customer_who_starts_leaving_stands_out_and_later_months_do_not_leak():
    rng = np.random.default_rng(0)
    season = 1 + 0.15 * np.sin(np.arange(12) / 12 * 2 * np.pi)
    units = 50 * season * rng.lognormal(0, 0.02, (30, 12))
    units[0, 8:] *= 0.55                                   # customer 0 cuts usage from September
    ops = _ops_with_usage(units)
    september = ops._usage_vs_usual(pd.Timestamp("2024-10-01"))
    assert september["usage_vs_usual"][0] < 0.6
    assert np.abs(september["usage_vs_usual"][1:] - 1).max() < 0.1    # the season alone: ~1
    before = ops._usage_vs_usual(pd.Timestamp("2024-09-01"))
    assert abs(before["usage_vs_usual"][0] - 1) < 0.1                  # August: nothing yet
    units_future = units.copy()
    units_future[:, 9:] = 1.0                               # the future changes: the past must not
    again = _ops_with_usage(units_future)._usage_vs_usual(pd.Timestamp("2024-09-01"))
    assert np.allclose(again["usage_vs_usual"], before["usage_vs_usual"])

"""Models registered before the subpackage layout still load and predict the same.

The fixtures were pickled by the flat layout's code (``models.churn.ChurnModel``,
``models.nps_selection.SelectionGap``, ...) on a 3,000-customer world, with the
predictions that code gave on 25 feature rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.churn import ChurnModel
from models.nps import NpsModel
from models.registry import load_pickled
from models.uplift import UpliftModel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models_before_layout"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.read_parquet(FIXTURES / "frame.parquet")


@pytest.mark.parametrize("name, cls", [("churn", ChurnModel), ("uplift", UpliftModel)])
def test_old_array_models_load_and_predict_as_before(frame, name, cls):
    model = load_pickled(FIXTURES / f"{name}.joblib.xz")
    assert isinstance(model, cls)
    np.testing.assert_allclose(model.predict(frame), np.load(FIXTURES / f"{name}_expected.npy"),
                               rtol=1e-12, atol=1e-12)


def test_old_nps_model_loads_and_predicts_as_before(frame):
    model = load_pickled(FIXTURES / "nps.joblib.xz")
    assert isinstance(model, NpsModel)
    pd.testing.assert_frame_equal(model.predict(frame),
                                  pd.read_parquet(FIXTURES / "nps_expected.parquet"))


def test_old_flat_module_names_resolve_to_the_new_modules():
    import importlib

    from models.legacy import MOVED, enable_old_names
    from models.nps.selection import SelectionGap

    enable_old_names()
    assert importlib.import_module("models.nps_selection").SelectionGap is SelectionGap
    for old, new in MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new)

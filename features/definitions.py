"""Feast definitions module for the `feast` CLI (`cd features && feast apply`).

The objects are built by ``features.feast_defs`` from the project settings; the `cem`
commands never import this file.
"""

from configs.settings import load_settings
from features.feast_defs import build_definitions

customer, customer_o, customer_x, customer_fused, churn_v1, nps_v1 = build_definitions(
    load_settings()
)

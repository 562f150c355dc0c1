"""Feast definitions module for the `feast` CLI (`cd features && feast apply`).

The objects are built by ``features.feast_defs`` from the project settings; the `cem`
commands never import this file.
"""

from configs.settings import load_settings
from features.feast_defs import build_definitions

# One module-level name per object (entity, views - customer_attributes when built -, services).
globals().update({obj.name: obj for obj in build_definitions(load_settings())})

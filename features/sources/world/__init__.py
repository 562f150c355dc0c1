"""The built-in synthetic world: a company's source systems plus hidden ground truth.

Equations and mechanisms: docs/world.md. Entry points: ``simulate_world`` (the history)
and ``advance_world`` (one more month, answering a product's plan).
"""

from .simulate import WorldSummary, simulate_world
from .step import StepSummary, advance_world

__all__ = ["StepSummary", "WorldSummary", "advance_world", "simulate_world"]

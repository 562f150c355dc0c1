"""The built-in synthetic world: a company's source systems plus hidden ground truth.

Equations and mechanisms: docs/world.md. Entry point: ``simulate_world``.
"""

from .simulate import WorldSummary, simulate_world

__all__ = ["WorldSummary", "simulate_world"]

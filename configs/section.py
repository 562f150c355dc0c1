"""What every settings section shares: the project's root, and no unknown keys."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Section(BaseModel):
    """A params.yaml section: a key it does not know is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")

"""What the ingested tables support: which models and actions run, and what a missing table
would add. Printed by ``cem ingest`` so a partial export says plainly what it gives up.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Models (and what they drive) and the tables each needs.
MODELS: dict[str, tuple[str, ...]] = {
    "churn model (risk per customer)": ("crm_customers",),
    "predicted-satisfaction model (NPS of non-respondents)": ("survey_invitations",
                                                              "survey_responses"),
    "uplift model (which action helps whom)": ("interventions",),
}
#: What is lost without a table (survey tables are one entry: they only work together).
WITHOUT: dict[tuple[str, ...], str] = {
    ("billing_invoices",): "no billing: no price, contract or payment features",
    ("product_usage",): "no usage: no usage features",
    ("support_tickets",): "no support tickets: no ticket features",
    ("complaints",): "no complaints: no complaint features",
    ("orders",): "no orders: no order features",
    ("survey_invitations", "survey_responses"):
        "no survey tables: the predicted-satisfaction model is skipped",
    ("interventions",): "no interventions: no uplift model, reps' lists ranked by risk x value",
}


def supported_models(found: Iterable[str]) -> dict[str, bool]:
    """Per model, whether every table it needs was found."""
    have = set(found)
    return {model: set(tables) <= have for model, tables in MODELS.items()}


def losses(found: Iterable[str]) -> list[str]:
    """One line per missing table (group): what it would add."""
    have = set(found)
    return [text for tables, text in WITHOUT.items() if not set(tables) <= have]


def coverage_lines(found: Iterable[str], missing: Iterable[str]) -> list[str]:
    """The lines ``cem ingest`` prints after its table: found, missing, models, losses."""
    found, missing = list(found), list(missing)
    lines = [f"tables found: {', '.join(found)}"]
    if missing:
        lines.append(f"tables missing (optional): {', '.join(missing)}")
    for model, ok in supported_models(found).items():
        lines.append(f"{model}: {'yes' if ok else 'skipped'}")
    return lines + losses(found)

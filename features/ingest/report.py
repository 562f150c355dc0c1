"""The ingest report: per-table row accounting, reason counts, identity match rates."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.table import Table


@dataclass
class TableReport:
    """Row accounting of one table. Invariant: rows_in == rows_kept + rows_quarantined."""

    table: str
    source: str
    rows_in: int
    rows_kept: int
    rows_quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rows_in != self.rows_kept + self.rows_quarantined:
            raise AssertionError(
                f"{self.table}: rows in ({self.rows_in}) != kept ({self.rows_kept})"
                f" + quarantined ({self.rows_quarantined})"
            )

    def top_reasons(self, n: int = 3) -> list[tuple[str, int]]:
        return list(self.reasons.items())[:n]


@dataclass
class IdentityCounts:
    """Responses and complaints that passed row validation, and how many were resolved."""

    attempted: dict[str, int] = field(default_factory=dict)
    resolved: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, attempted: int, resolved: int) -> None:
        self.attempted[kind] = self.attempted.get(kind, 0) + int(attempted)
        self.resolved[kind] = self.resolved.get(kind, 0) + int(resolved)

    def rate(self) -> float | None:
        total = sum(self.attempted.values())
        return sum(self.resolved.values()) / total if total else None

    def rate_by_kind(self) -> dict[str, float | None]:
        return {
            kind: (self.resolved[kind] / n if n else None) for kind, n in self.attempted.items()
        }


@dataclass
class IngestReport:
    """Outcome of ``run_ingest``; ``tables`` in processing order."""

    tables: dict[str, TableReport] = field(default_factory=dict)
    identity: IdentityCounts = field(default_factory=IdentityCounts)
    missing_tables: list[str] = field(default_factory=list)  # optional tables not exported

    @property
    def identity_match_rate(self) -> float | None:
        """Resolved / all responses + complaints that passed row validation."""
        return self.identity.rate()

    @property
    def identity_match_rate_by_kind(self) -> dict[str, float | None]:
        return self.identity.rate_by_kind()

    @property
    def extra_columns(self) -> dict[str, list[str]]:
        return {name: t.extra_columns for name, t in self.tables.items()}

    @property
    def empty_tables(self) -> list[str]:
        """Tables whose file has a header and no rows."""
        return [name for name, t in self.tables.items() if t.rows_in == 0]

    @property
    def rows_quarantined(self) -> int:
        return sum(t.rows_quarantined for t in self.tables.values())

    def to_dict(self) -> dict:
        return {
            "tables": {name: asdict(t) for name, t in self.tables.items()},
            "identity_match_rate": self.identity_match_rate,
            "identity_match_rate_by_kind": self.identity_match_rate_by_kind,
            "identity_counts": asdict(self.identity),
            "extra_columns": self.extra_columns,
            "missing_tables": self.missing_tables,
            "empty_tables": self.empty_tables,
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    def rich_table(self, top: int = 3) -> Table:
        """Rows in / kept / quarantined and the top quarantine reasons per table."""
        rate = self.identity_match_rate
        caption = "identity match rate: " + ("n/a" if rate is None else f"{rate:.1%}")
        by_kind = ", ".join(
            f"{k} {'n/a' if r is None else f'{r:.1%}'}"
            for k, r in self.identity_match_rate_by_kind.items()
        )
        table = Table(title="cem ingest", caption=caption + (f" ({by_kind})" if by_kind else ""))
        table.add_column("table")
        for name in ("rows in", "kept", "quarantined"):
            table.add_column(name, justify="right")
        table.add_column("top reasons")
        for t in self.tables.values():
            reasons = "\n".join(f"{r}: {n:,}" for r, n in t.top_reasons(top))
            table.add_row(
                t.table, f"{t.rows_in:,}", f"{t.rows_kept:,}", f"{t.rows_quarantined:,}", reasons
            )
        return table


def render_report(report: IngestReport, top: int = 3) -> Table:
    """Functional alias of :meth:`IngestReport.rich_table`."""
    return report.rich_table(top)

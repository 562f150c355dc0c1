"""``cem ingest``: validate the source exports against the data contract.

Entry point: :func:`run_ingest`. See ``docs/data_contract.md`` for the contract and
``docs/features.md#clean-tables`` for the clean-table dtype convention.
"""

from features.ingest.io import SourceContractError
from features.ingest.report import IdentityCounts, IngestReport, TableReport, render_report
from features.ingest.run import run_ingest
from features.ingest.schemas import SCHEMAS, TABLES, clean_schema

__all__ = [
    "SCHEMAS",
    "TABLES",
    "IdentityCounts",
    "IngestReport",
    "SourceContractError",
    "TableReport",
    "clean_schema",
    "render_report",
    "run_ingest",
]

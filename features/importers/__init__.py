"""Importers: public or third-party datasets mapped onto the data contract.

Each importer writes the nine contract tables (``docs/data_contract.md``) as CSV into a
directory that ``cem ingest`` then reads like any user export.
"""

from features.importers.ibm_telco import OUTCOME_COLUMNS, TELCO_FILES, import_ibm_telco

__all__ = ["OUTCOME_COLUMNS", "TELCO_FILES", "import_ibm_telco"]

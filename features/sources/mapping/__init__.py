"""Company exports -> the contract tables, through a YAML mapping file and no code per dataset.

    stage_mapping(Path("configs/sources/ibm_telco.yaml"),
                  Path("../shared/datasets/ibm_telco_extended"), staging_dir)
    run_ingest(staging_dir, clean_dir, quarantine_dir, params)

Format of the mapping file: docs/data_contract.md#the-source-mapping-file
"""

from features.sources.mapping.apply import stage_mapping, stage_tables
from features.sources.mapping.load import load_mapping
from features.sources.mapping.spec import MappingError, MappingSpec

__all__ = ["MappingError", "MappingSpec", "load_mapping", "stage_mapping", "stage_tables"]

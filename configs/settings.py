"""Typed settings: paths and URIs from the environment, tunables from params.yaml.

One place for every path. Nothing happens at import time: call ``load_settings()``.
Environment variables prefixed ``CEM_`` override any field, nested sections with a
double underscore (``CEM_SIMULATE__CUSTOMERS=5000``, ``CEM_DATA_DIR=/tmp/cem``).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import yaml
from pydantic import ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from configs.plan_settings import CycleParams, PrescribeParams, TagParams
from configs.section import PROJECT_ROOT, Section

SOURCE_NOTE = "source.json"   # {"name": ...}: what an export folder holds (run names, reports)
DEFAULT_PARAMS_FILE = PROJECT_ROOT / "configs" / "params.yaml"

class SimulateParams(Section):
    customers: int = Field(20000, ge=10)
    months: int = Field(24, ge=3, le=120)
    start_date: date = date(2024, 1, 1)
    seed: int = 42
    share_existing_at_start: float = Field(0.75, ge=0, le=1)
    relationship_wave_every_months: int = Field(6, ge=1)
    customers_per_rep: int = Field(400, ge=1)
    campaign_rate: float = Field(0.03, ge=0, le=0.5)
    holdout_share: float = Field(0.2, gt=0, lt=1)
    notice_days: int = Field(42, ge=0, le=365)   # notice period: days from notice to churn
    chunk_customers: int = Field(250000, ge=1000)


class IngestParams(Section):
    source_format: str = Field("auto", pattern="^(auto|parquet|csv)$")
    phone_digits: int = Field(10, ge=6, le=15)


class FeaturesParams(Section):
    snapshot_every_months: int = Field(1, ge=1, le=12)
    first_snapshot_after_months: int = Field(3, ge=1)  # history needed before the first snapshot
    churn_horizon_days: int = Field(90, ge=7)
    feature_ttl_days: int = Field(45, ge=1)             # Feast TTL: how stale a snapshot may be


class LightGBMParams(Section):
    n_estimators: int = Field(400, ge=10)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(24, ge=2)
    max_depth: int = Field(6, ge=-1)          # shallow trees keep per-customer SHAP affordable
    min_child_samples: int = Field(50, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    early_stopping_rounds: int = Field(30, ge=1)


class UpliftParams(Section):
    """Uplift learners (models.uplift.model): outcome window and LightGBM sizes, kept small (few events)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # An action shifts the decisions of the next three months. Where the CRM records a
    # decision (notice_date), the label is a decision within decision_horizon_days; else a
    # churn date, which follows the decision weeks later, within horizon_days
    # (models.uplift.data.outcome_of).
    horizon_days: int = Field(150, ge=30, le=730)
    decision_horizon_days: int = Field(90, ge=7, le=730)
    n_estimators: int = Field(150, ge=0)
    learning_rate: float = Field(0.03, gt=0, le=1)
    num_leaves: int = Field(6, ge=2)
    max_depth: int = Field(3, ge=-1)
    min_child_samples: int = Field(60, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(5.0, ge=0)
    risk_n_estimators: int = Field(200, ge=10)     # the risk prior's booster (snapshot frame)
    risk_num_leaves: int = Field(24, ge=2)
    folds: int = Field(2, ge=2)                    # cross-fitting folds of the DR-learner
    cv_folds: int = Field(3, ge=2)                 # folds of the cross-validation that picks the learner
    learner: str | None = Field(None, pattern="^(shift|t|x|dr|driver)$")  # force one (None: choose)
    bootstrap: int = Field(200, ge=20)             # customer-bootstrap draws behind each Qini interval
    # an action is planned only if its cross-validated policy value on the log is above 0 at
    # this bootstrap quantile (models.uplift.evidence); None: no gate
    evidence_quantile: float | None = Field(0.1, gt=0, lt=0.5)
    # logged rows whose outcome window is still open but followed this many days join the
    # gate's evidence, labelled on the days so far (the learners wait for the whole window)
    evidence_follow_up_days: int | None = Field(30, ge=1)
    seed: int = 0


class SearchParams(Section):
    """Hyperparameter search of the churn booster (Optuna), on the training data only."""

    trials: int = Field(25, ge=0)                  # 0: the configured recipe as it is
    timeout_seconds: float = Field(120.0, gt=0)    # wall-time budget of the whole search


class TrainParams(Section):
    valid_share: float = Field(0.25, gt=0, lt=1)   # latest share of snapshots held out (out-of-time)
    cv_folds: int = Field(5, ge=2, le=20)           # customer folds when out of time is impossible
    refit_all: bool = True                          # final trees on every training customer
    # with cluster.address set: the churn model's final boosters on lightgbm.dask (dask) or
    # in this process (local); without a cluster always local (docs/cluster.md)
    cluster_fit: str = Field("dask", pattern="^(dask|local)$")
    calibration: str = Field("isotonic", pattern="^(isotonic|sigmoid)$")
    churn: LightGBMParams = LightGBMParams()
    search: SearchParams = SearchParams()
    nps: LightGBMParams = LightGBMParams()
    propensity: LightGBMParams = LightGBMParams(n_estimators=200)
    max_ipw_weight: float = Field(20.0, ge=1)       # clip inverse-propensity weights
    bootstrap_samples: int = Field(300, ge=20)
    satisfaction_scale: str = Field("auto", pattern="^(auto|nps|csat)$")  # auto: NPS if answered, else CSAT
    satisfaction_validation_months: int = Field(3, ge=1, le=24)  # validation months without waves
    uplift: UpliftParams = UpliftParams()
    seed: int = 0


class ServingParams(Section):
    """Serving database and scoring service."""

    database_url: str | None = None                    # None: SQLite under data/serving
    max_batch_rows: int = Field(1000, ge=1)            # POSTed feature rows per request
    page_size: int = Field(25, ge=1, le=500)
    model_refresh_seconds: float = Field(30.0, gt=0)   # how often the champion alias is re-read
    view_cache_size: int = Field(250_000, ge=0)        # customers whose latest-run view is kept (~1 KB each)
    fresh_cache_size: int = Field(250_000, ge=0)       # customers whose fresh score is kept (~1 KB each)
    batch_workers: int = Field(2, ge=1, le=64)         # threads scoring row blocks in a batch run
    max_body_bytes: int = Field(4_000_000, ge=1024)    # request bodies above this get 413, unread
    token_days: float | None = Field(90.0, gt=0)       # `cem tokens` expiry (None: never expire)
    session_hours: float = Field(12.0, gt=0, le=24 * 30)  # the reps' page sign-in lasts this long
    comment_days: int = Field(90, ge=1)                # older comments: "no comment in the last N days"
    https: bool = False                                # served over HTTPS: Secure cookie, HSTS


class ClusterParams(Section):
    """Where the heavy stages run (pipelines.cluster; docs/cluster.md).

    ``address``: "" in this process (as without Dask), "local" a ``distributed.LocalCluster``
    of ``workers`` processes started for the run, "tcp://host:8786" an existing scheduler.
    """

    address: str = Field("", pattern=r"^(|local|(tcp|tls|inproc|ucx)://\S+)$")
    workers: int = Field(2, ge=1, le=256)            # LocalCluster worker processes
    threads_per_worker: int = Field(1, ge=1, le=64)  # LocalCluster threads in each worker
    memory_limit: str = "auto"                       # per LocalCluster worker: "6GB"; auto: RAM / workers


class Settings(BaseSettings):
    """Everything configurable. Paths derive from ``data_dir`` unless set."""

    model_config = SettingsConfigDict(
        env_prefix="CEM_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = PROJECT_ROOT / "data"
    params_file: Path = DEFAULT_PARAMS_FILE

    @field_validator("data_dir", "params_file")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """Resolved once, against the working directory: Feast and MLflow resolve relative
        paths against their own folders."""
        return Path(value).expanduser().resolve()
    # Feast: embedded defaults (Parquet offline store joined with DuckDB ASOF, SQLite online
    # store; `duckdb`/`file` select Feast's own offline stores);
    # teams switch the online store to Redis with CEM_FEAST_ONLINE_STORE=redis.
    feast_offline_store: str = Field("asof", pattern="^(asof|duckdb|file)$")
    feast_online_store: str = Field("sqlite", pattern="^(sqlite|redis)$")
    feast_redis_url: str = "localhost:6379"
    # MLflow: a SQLite tracking store under data/mlflow by default; teams point this at
    # their tracking server or a PostgreSQL URL (postgresql+psycopg://...).
    mlflow_tracking_uri: str | None = None
    simulate: SimulateParams = SimulateParams()
    ingest: IngestParams = IngestParams()
    features: FeaturesParams = FeaturesParams()
    train: TrainParams = TrainParams()
    prescribe: PrescribeParams = PrescribeParams()
    serving: ServingParams = ServingParams()
    tags: TagParams = TagParams()
    cycle: CycleParams = CycleParams()
    cluster: ClusterParams = ClusterParams()

    @property
    def raw_dir(self) -> Path:
        """Source-system exports (the simulated world writes here)."""
        return self.data_dir / "raw"

    @property
    def truth_dir(self) -> Path:
        """Hidden ground truth of the simulated world: evaluation code only."""
        return self.data_dir / "truth"

    @property
    def clean_dir(self) -> Path:
        return self.data_dir / "clean"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def staged_dir(self) -> Path:
        """Contract tables written from a company export by its mapping file, before ingest."""
        return self.data_dir / "staged"

    @property
    def feast_dir(self) -> Path:
        """Feast registry and the SQLite online store."""
        return self.data_dir / "feast"

    @property
    def mlflow_dir(self) -> Path:
        return self.data_dir / "mlflow"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{(self.mlflow_dir / 'mlflow.db').resolve()}"

    @property
    def serving_dir(self) -> Path:
        return self.data_dir / "serving"

    @property
    def champion_copy_dir(self) -> Path:
        """The local copy of the last champion models loaded (served when the registry is not)."""
        return self.serving_dir / "champions"

    @property
    def serving_database_url(self) -> str:
        """SQLAlchemy URL of the serving database (SQLite file by default)."""
        url = self.serving.database_url
        return url or f"sqlite:///{(self.serving_dir / 'serving.db').resolve()}"

    @property
    def feature_dir(self) -> Path:
        """Feature tables (Feast offline store sources) and label tables."""
        return self.data_dir / "features"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init (the YAML file, passed by load_settings) < env: env wins.
        return (env_settings, init_settings)


def read_params(path: Path) -> dict:
    """Read params.yaml; a clear error names the file when it is missing or malformed."""
    if not path.exists():
        raise FileNotFoundError(f"params file not found: {path}")
    with path.open() as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def load_settings(params_file: Path | None = None, **overrides) -> Settings:
    """Settings from params.yaml (``CEM_PARAMS_FILE`` or the default), env, then overrides."""
    path = Path(params_file or os.environ.get("CEM_PARAMS_FILE") or DEFAULT_PARAMS_FILE)
    data = read_params(path)
    data["params_file"] = path
    settings = Settings(**data)
    if overrides:  # explicit arguments win over the environment; validated like the rest
        settings = Settings.model_validate(settings.model_dump() | overrides)
    return settings

"""The bodies of `cem serve` and `cem tokens`: run the scoring service, issue access tokens."""

from __future__ import annotations

import os
from pathlib import Path

from configs.settings import Settings
from serving.auth import issue_tokens, write_tokens_file
from serving.db.read import rep_ids
from serving.db.schema import engine_for

APP = "serving.app:create_app"


def tokens_path(settings: Settings) -> Path:
    return settings.serving_dir / "tokens.json"


def issue_demo_tokens(settings: Settings) -> tuple[Path, dict[str, str]]:
    """New tokens for every rep of the latest scoring run and one manager; raw tokens to a 0600 file."""
    engine = engine_for(settings)
    try:
        reps = rep_ids(engine)
        if not reps:
            raise RuntimeError(f"no complete scoring run in {settings.serving_database_url}: "
                               "run `cem score` first")
        tokens = issue_tokens(engine, reps)
    finally:
        engine.dispose()
    return write_tokens_file(tokens_path(settings), tokens), tokens


def run_server(settings: Settings, host: str = "127.0.0.1", port: int = 8000,
               access_log: bool = True) -> None:
    """uvicorn running the app factory; the app reads its settings from the same data folder."""
    import uvicorn

    os.environ["CEM_DATA_DIR"] = str(settings.data_dir)      # create_app() -> load_settings() sees it
    uvicorn.run(APP, factory=True, host=host, port=port, access_log=access_log, loop="auto", http="auto",
                proxy_headers=False, server_header=False, date_header=False)

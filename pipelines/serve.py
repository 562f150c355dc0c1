"""The bodies of `cem serve` and `cem tokens`: run the scoring service, issue access tokens."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

from configs.settings import Settings
from serving.auth import issue_tokens, rotate_token, write_tokens_file
from serving.db.read import rep_ids
from serving.db.schema import engine_for
from serving.db.write import utcnow

APP = "serving.app:create_app"


def tokens_path(settings: Settings) -> Path:
    return settings.serving_dir / "tokens.json"


def token_days(settings: Settings, expires_in_days: float | None) -> float | None:
    """Days new tokens stay valid: ``serving.token_days`` unless given; 0 or None there: no expiry."""
    return (settings.serving.token_days if expires_in_days is None else expires_in_days) or None


def token_expiry(days: float | None) -> datetime | None:
    return None if days is None else utcnow() + timedelta(days=days)


def issue_demo_tokens(settings: Settings, expires_in_days: float | None = None,
                      rep: str | None = None) -> tuple[Path, dict[str, str]]:
    """New tokens for every rep of the latest scoring run and one manager (or, with ``rep``, a new
    token for that one only); raw tokens to a 0600 file. ``expires_in_days``: see ``token_days``."""
    days = token_days(settings, expires_in_days)
    engine = engine_for(settings)
    try:
        if rep is not None:
            tokens = {rep: rotate_token(engine, rep, days)}
        else:
            reps = rep_ids(engine)
            if not reps:
                raise RuntimeError(f"no complete scoring run in {settings.serving_database_url}: "
                                   "run `cem score` first")
            tokens = issue_tokens(engine, reps, expires_in_days=days)
    finally:
        engine.dispose()
    path = tokens_path(settings)
    kept = json.loads(path.read_text()) if rep is not None and path.exists() else {}
    return write_tokens_file(path, {**kept, **tokens}), tokens


def run_server(settings: Settings, host: str = "127.0.0.1", port: int = 8000,
               access_log: bool = True) -> None:
    """uvicorn running the app factory; the app reads its settings from the same data folder."""
    import uvicorn

    os.environ["CEM_DATA_DIR"] = str(settings.data_dir)      # create_app() -> load_settings() sees it
    uvicorn.run(APP, factory=True, host=host, port=port, access_log=access_log, loop="auto", http="auto",
                proxy_headers=False, server_header=False, date_header=False)

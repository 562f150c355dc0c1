"""Access: one bearer token per rep, one for managers; only SHA-256 hashes are stored.

A rep sees only their own customers and actions; a manager sees everything (and is
the role for other systems posting events or batches). Tokens are 256-bit random
strings, so a plain SHA-256 is enough to make the stored hash useless to a reader of
the database (no password stretching needed).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, delete, insert, select

from serving.db.schema import reps
from serving.db.write import utcnow

MANAGER_ID = "manager"
COOKIE = "cem_token"


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    rep_id: str
    role: str

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"

    def may_see(self, rep_id: str | None) -> bool:
        """A manager sees every rep's data; a rep only their own."""
        return self.is_manager or (rep_id is not None and rep_id == self.rep_id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def principal_for(engine: Engine, token: str | None) -> Principal | None:
    """The rep or manager a token belongs to (None for a missing or unknown token)."""
    if not token:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(reps.c.rep_id, reps.c.role).where(reps.c.token_hash == hash_token(token))
        ).first()
    return Principal(row.rep_id, row.role) if row else None


class PrincipalCache:
    """Token -> principal, re-read from the database at most every ``ttl`` seconds per token.

    Revoking (``cem tokens``) takes effect within ``ttl``. Unknown tokens are remembered
    too, in a bounded map, so guessing does not hit the database on every request.
    """

    def __init__(self, ttl: float = 5.0, size: int = 10_000):
        self.ttl, self.size, self._seen = ttl, size, {}

    def get(self, engine: Engine, token: str | None) -> Principal | None:
        if not token:
            return None
        key, now = hash_token(token), time.monotonic()
        hit = self._seen.get(key)
        if hit is not None and now - hit[1] < self.ttl:
            return hit[0]
        principal = principal_for(engine, token)
        if len(self._seen) >= self.size:
            self._seen.clear()
        self._seen[key] = (principal, now)
        return principal

    def clear(self) -> None:
        self._seen.clear()


def issue_tokens(
    engine: Engine, rep_ids: list[str], managers: tuple[str, ...] = (MANAGER_ID,)
) -> dict[str, str]:
    """New tokens for these reps and managers; every earlier token stops working. Returns raw tokens."""
    tokens = {rid: secrets.token_urlsafe(32) for rid in [*rep_ids, *managers]}
    now = utcnow()
    rows = [
        {
            "rep_id": rid,
            "role": "manager" if rid in managers else "rep",
            "token_hash": hash_token(tok),
            "created_at": now,
        }
        for rid, tok in tokens.items()
    ]
    with engine.begin() as conn:
        conn.execute(delete(reps))
        conn.execute(insert(reps), rows)
    return tokens


def write_tokens_file(path: Path, tokens: dict[str, str]) -> Path:
    """The raw tokens for the demo, readable by the owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh, indent=2, sort_keys=True)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through os.open
    return path

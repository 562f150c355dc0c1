"""Access: one bearer token per rep, one for managers; only SHA-256 hashes are stored.

A rep sees only their own customers and actions; a manager sees everything (and is
the role for other systems posting events or batches). Tokens are 256-bit random
strings, so a plain SHA-256 is enough to make the stored hash useless to a reader of
the database (no password stretching needed). A token may carry an expiry
(``cem tokens --expires-in DAYS``); issuing a rep a new token revokes the old one.

The reps' page signs in with a token once and then holds a session cookie: a random id
whose hash is stored with its own expiry, never the token itself. Rotating the token
ends the sessions opened with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, delete, insert, inspect, select

from serving.db.schema import reps, web_sessions
from serving.db.write import utcnow

MANAGER_ID = "manager"
SESSION_COOKIE = "cem_session"


@dataclass(frozen=True)
class Principal:
    """Who is calling; ``expires_at`` (naive UTC) is when their token or session stops working."""

    rep_id: str
    role: str
    expires_at: datetime | None = None

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or utcnow())

    def may_see(self, rep_id: str | None) -> bool:
        """A manager sees every rep's data; a rep only their own."""
        return self.is_manager or (rep_id is not None and rep_id == self.rep_id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def principal_for(engine: Engine, token: str | None) -> Principal | None:
    """The rep or manager a token belongs to, expired or not (None for a missing or unknown token)."""
    if not token:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(reps.c.rep_id, reps.c.role, reps.c.expires_at).where(
                reps.c.token_hash == hash_token(token)
            )
        ).first()
    return Principal(row.rep_id, row.role, row.expires_at) if row else None


def session_principal(engine: Engine, session_id: str | None) -> Principal | None:
    """The caller behind a session cookie; it expires with the session or its token, the earlier."""
    if not session_id:
        return None
    query = (
        select(reps.c.rep_id, reps.c.role, reps.c.expires_at, web_sessions.c.expires_at.label("ends"))
        .join(web_sessions, web_sessions.c.token_hash == reps.c.token_hash)
        .where(web_sessions.c.session_hash == hash_token(session_id))
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    ends = row.ends if row.expires_at is None else min(row.ends, row.expires_at)
    return Principal(row.rep_id, row.role, ends)


def open_session(engine: Engine, token: str, hours: float) -> str:
    """A new session for a valid token's holder; returns the cookie's value (stored hashed)."""
    session_id, now = secrets.token_urlsafe(32), utcnow()
    with engine.begin() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))  # drop ended ones
        conn.execute(
            insert(web_sessions).values(
                session_hash=hash_token(session_id),
                token_hash=hash_token(token),
                created_at=now,
                expires_at=now + timedelta(hours=hours),
            )
        )
    return session_id


def close_session(engine: Engine, session_id: str | None) -> None:
    if session_id:
        with engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.session_hash == hash_token(session_id)))


class PrincipalCache:
    """Token or session -> principal, re-read from the database at most every ``ttl`` seconds each.

    Revoking (``cem tokens``) takes effect within ``ttl``; expiry is checked on every
    request from the cached ``expires_at``. Unknown tokens are remembered too, in a
    bounded map, so guessing does not hit the database on every request.
    """

    def __init__(self, ttl: float = 5.0, size: int = 10_000):
        self.ttl, self.size, self._seen = ttl, size, {}

    def get(self, engine: Engine, token: str | None, session: bool = False) -> Principal | None:
        if not token:
            return None
        key, now = (session, hash_token(token)), time.monotonic()
        hit = self._seen.get(key)
        if hit is not None and now - hit[1] < self.ttl:
            return hit[0]
        principal = (session_principal if session else principal_for)(engine, token)
        if len(self._seen) >= self.size:
            self._seen.clear()
        self._seen[key] = (principal, now)
        return principal

    def clear(self) -> None:
        self._seen.clear()


def _token_rows(tokens: dict[str, str], managers: tuple[str, ...], days: float | None) -> list[dict]:
    now = utcnow()
    expires = None if days is None else now + timedelta(days=days)
    return [
        {
            "rep_id": rid,
            "role": "manager" if rid in managers else "rep",
            "token_hash": hash_token(tok),
            "created_at": now,
            "expires_at": expires,
        }
        for rid, tok in tokens.items()
    ]


def _ensure_token_table(engine: Engine) -> None:
    """A database made before tokens expired lacks ``reps.expires_at``: every token is being
    replaced anyway, so the table is made anew."""
    columns = {c["name"] for c in inspect(engine).get_columns(reps.name)}
    if "expires_at" not in columns:
        reps.drop(engine)
        reps.create(engine)


def issue_tokens(
    engine: Engine,
    rep_ids: list[str],
    managers: tuple[str, ...] = (MANAGER_ID,),
    expires_in_days: float | None = None,
) -> dict[str, str]:
    """New tokens for these reps and managers; every earlier token and session stops working.
    Returns the raw tokens."""
    _ensure_token_table(engine)
    tokens = {rid: secrets.token_urlsafe(32) for rid in [*rep_ids, *managers]}
    with engine.begin() as conn:
        conn.execute(delete(reps))
        conn.execute(delete(web_sessions))
        conn.execute(insert(reps), _token_rows(tokens, managers, expires_in_days))
    return tokens


def rotate_token(engine: Engine, rep_id: str, expires_in_days: float | None = None) -> str:
    """A new token for one rep or manager already holding one; their old token and its
    sessions stop working. Raises ``LookupError`` for an id without a token."""
    with engine.begin() as conn:
        old = conn.execute(select(reps.c.role, reps.c.token_hash).where(reps.c.rep_id == rep_id)).first()
        if old is None:
            raise LookupError(f"no token issued to {rep_id!r}: run `cem tokens` for every rep first")
        token = secrets.token_urlsafe(32)
        managers = (rep_id,) if old.role == "manager" else ()
        conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == old.token_hash))
        conn.execute(delete(reps).where(reps.c.rep_id == rep_id))
        conn.execute(insert(reps), _token_rows({rep_id: token}, managers, expires_in_days))
    return token


def write_tokens_file(path: Path, tokens: dict[str, str]) -> Path:
    """The raw tokens for the demo, readable by the owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh, indent=2, sort_keys=True)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through os.open
    return path

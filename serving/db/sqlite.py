"""SQLite connection settings of the serving database (the embedded default)."""

from __future__ import annotations


def sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers keep reading the last complete run while a run is written."""
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see sqlite_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Debian builds SQLite with SECURE_DELETE: zeroing every freed page made dropping a replaced
    # run's tables 10x slower; FAST still overwrites deleted content where it costs no extra I/O
    cursor.execute("PRAGMA secure_delete=FAST")
    cursor.execute("PRAGMA cache_size=-262144")  # 256 MB: bulk writes keep index pages in memory
    cursor.close()


def sqlite_begin(conn) -> None:
    """A real BEGIN for every transaction, reads included, so a reader's statements see one snapshot."""
    conn.exec_driver_sql("BEGIN")

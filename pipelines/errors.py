"""What a failing `cem` command prints: one line naming the file, column or setting."""

from __future__ import annotations

from pathlib import Path

MADE_BY = {"raw": "cem simulate", "clean": "cem ingest", "features": "cem features",
           "feast": "cem features", "mlflow": "cem train", "serving": "cem score"}


def failure_message(err: BaseException) -> str:
    """One line saying what went wrong, naming the file, column or setting when known."""
    if isinstance(err, FileNotFoundError) and err.filename:
        made_by = next((step for folder, step in MADE_BY.items()
                        if folder in Path(str(err.filename)).parts), None)
        return f"file not found: {err.filename}" + (f" (run `{made_by}` first)" if made_by else "")
    if isinstance(err, KeyError):
        return f"missing key or column {err.args[0]!r}" if err.args else "missing key"
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    known = ("ValueError", "RuntimeError", "LookupError", "ModelNotRegistered", "SourceContractError")
    name = type(err).__name__
    return first if name in known and first else f"{name}: {first}".rstrip(": ")

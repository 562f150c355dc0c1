"""Incremental feature builds: reuse the rows of snapshots whose inputs have not changed.

A feature row at snapshot ``s`` reads only what happened strictly before ``s``. So when a
new month of exports arrives, every earlier snapshot's rows are the same as last time, as
long as nothing the company exported *before the last built snapshot* changed. The build
writes a manifest beside the tables (``build_manifest.json``): its snapshots, its settings,
a digest of the transforms' code and a digest of the clean inputs as seen before its last
snapshot (times at or after that instant masked, rows after it left out). The next build
recomputes that digest on the new clean tables; only when everything matches are the
earlier snapshots' feature rows copied (row group by row group) and only the new snapshots
computed. Any difference (a late-arriving ticket, a corrected invoice, a new setting, a
changed transform, a reordered customer table, the company's own attribute or event tables)
means a full build, with the reason logged. Labels are always recomputed: they look ahead.
Design: docs/features.md#incremental-builds
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .inputs import ACTIVITY, DATES, TIMES, Clean, to_utc
from .schema import EVENT_TIMESTAMP

log = logging.getLogger(__name__)
MANIFEST = "build_manifest.json"
#: why an export is always built whole: its own tables are not in the inputs' digest
OWN_TABLES = "the export maps its own attribute or event tables"
_CODE_DIR = Path(__file__).resolve().parent


@dataclass
class Reuse:
    """What a build may take from the previous tables: every snapshot before ``cut``."""

    folder: Path
    cut: pd.Timestamp
    snapshots: int


def code_digest() -> str:
    """The transforms' own source: a changed feature definition invalidates old rows."""
    h = hashlib.sha256()
    for path in sorted(_CODE_DIR.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _frame_digest(frame: pd.DataFrame, cut: int) -> str:
    """Digest of a frame as seen before ``cut`` (ns): later instants masked out."""
    out = {}
    for col in frame.columns:
        values = frame[col]
        if col in DATES or col in TIMES or pd.api.types.is_datetime64_any_dtype(values):
            if not isinstance(values.dtype, pd.DatetimeTZDtype):
                values = to_utc(values)
            stamps = values.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view("int64")
            out[col] = np.where(values.isna().to_numpy() | (stamps >= cut), -1, stamps)
        elif isinstance(values.dtype, pd.CategoricalDtype):
            out[col] = values.astype("string")
        else:
            out[col] = values
    out = pd.DataFrame(out)
    hashed = pd.util.hash_pandas_object(out, index=False).to_numpy()
    h = hashlib.sha256(np.ascontiguousarray(hashed).tobytes())
    h.update(",".join(map(str, out.columns)).encode())
    return h.hexdigest()


def input_digest(clean: Clean, cut: pd.Timestamp, rows: np.ndarray | None = None) -> str:
    """The clean inputs as a build at any snapshot up to ``cut`` reads them. ``rows``: a
    customer bucket's rows in the whole crm table (``buckets.Bucket.rows``; on a cluster),
    which set where its customers' feature rows go among everyone's."""
    t = pd.Timestamp(cut).value
    cust = clean.customers
    known = cust["signup_date"].isna() | (cust["signup_date"] < pd.Timestamp(t, tz="UTC"))
    parts = [_frame_digest(cust[known], t), str(int(known.sum()))]   # later sign-ups: not read
    if rows is not None:
        kept = np.ascontiguousarray(np.asarray(rows, np.int64)[known.to_numpy()])
        parts.append(hashlib.sha256(kept.tobytes()).hexdigest())
    for name in sorted(clean.tables):
        frame = clean.tables[name]
        col = ACTIVITY.get(name)
        if col is not None and col in frame:
            frame = frame[frame[col] < pd.Timestamp(t, tz="UTC")]
        parts.append(f"{name}:{_frame_digest(frame, t)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def manifest(snapshots: pd.DatetimeIndex, settings: dict, schema: dict, digest: str,
             reuse: Reuse | None, buckets: int | None = None) -> dict:
    """``new_from``: the first snapshot this build computed (what the online store lacks).
    ``buckets``: a cluster build's bucket count, whose digest combines the buckets'."""
    first_new = snapshots[reuse.snapshots] if reuse is not None else snapshots[0]
    content = {"snapshots": [s.isoformat() for s in snapshots], "settings": settings,
               "schema": schema, "code": code_digest(), "inputs": digest,
               "new_from": None if reuse is None else first_new.isoformat()}
    return content if buckets is None else {**content, "buckets": buckets}


def new_from(folder: Path) -> pd.Timestamp | None:
    """The first snapshot the build in ``folder`` computed, when it reused earlier ones."""
    path = Path(folder) / MANIFEST
    value = json.loads(path.read_text()).get("new_from") if path.is_file() else None
    return None if value is None else pd.Timestamp(value)


def write_manifest(out_dir: Path, content: dict) -> None:
    (Path(out_dir) / MANIFEST).write_text(json.dumps(content, indent=1) + "\n")


def previous_manifest(previous: Path | None) -> dict | None:
    """The manifest of the build in ``previous`` (None: no folder, or no manifest)."""
    path = None if previous is None else Path(previous) / MANIFEST
    return json.loads(path.read_text()) if path is not None and path.is_file() else None


def built_snapshots(old: dict) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(old["snapshots"], utc=True)).as_unit("ns")


def unchanged_reason(old: dict, snapshots: pd.DatetimeIndex, settings: dict,
                     schema: dict) -> str | None:
    """Why the previous build cannot be reused, the inputs' digest aside (None: it may be)."""
    done = built_snapshots(old)
    return (("the feature settings changed" if old["settings"] != settings else None)
            or ("the features the export supports changed" if old["schema"] != schema else None)
            or ("the feature code changed" if old["code"] != code_digest() else None)
            or ("no earlier snapshot to reuse" if len(done) == 0 else None)
            or ("the snapshots moved" if list(snapshots[:len(done)]) != list(done) else None)
            or ("no new snapshot" if len(snapshots) <= len(done) else None))


def plan_reuse(previous: Path | None, clean: Clean, snapshots: pd.DatetimeIndex, settings: dict,
               schema: dict, whole_only: str | None) -> Reuse | None:
    """The reusable part of the previous build, or None (and why, in the log)."""
    old = previous_manifest(previous)
    if old is None:
        return None
    done = built_snapshots(old)
    split = old.get("buckets")
    reason = (whole_only
              or (f"the previous build was made in {split} customer buckets on a cluster: its "
                  "digest combines the buckets'" if split is not None else None)
              or unchanged_reason(old, snapshots, settings, schema)
              or ("data before the last built snapshot changed"
                  if input_digest(clean, done[-1]) != old["inputs"] else None))
    if reason is not None:
        log.info("features: full build (%s)", reason)
        return None
    log.info("features: %d snapshots reused, %d new", len(done), len(snapshots) - len(done))
    return Reuse(Path(previous), done[-1], len(done))


def copy_rows(reuse: Reuse, name: str, writer) -> None:
    """Append the previous table's rows of the reused snapshots to ``writer`` (row groups)."""
    source = pq.ParquetFile(reuse.folder / f"{name}.parquet")
    cut = pa.scalar(reuse.cut.value, pa.timestamp("ns", tz="UTC"))
    for i in range(source.num_row_groups):
        group = source.read_row_group(i)
        keep = pc.less_equal(group[EVENT_TIMESTAMP].cast(pa.timestamp("ns", tz="UTC")), cut)
        group = group.filter(keep)
        if group.num_rows:
            writer.append(group)

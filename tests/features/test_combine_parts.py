"""The cluster build's merge of the buckets' parts writes the in-process file byte for byte,
including a snapshot larger than a row group and an empty snapshot, while holding a row
group at a time (the parts in small row groups, merged as sorted runs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.transforms import build, parallel
from features.transforms.build import ROW, TableWriter

KINDS = {"x": "float", "n": "int", "s": "string"}
CREATED = pd.Timestamp("2026-03-01", tz="UTC")


def _snapshot(rng, day: str, size: int, crm: int) -> dict:
    rows = np.sort(rng.choice(crm, size, replace=False))
    x = rng.normal(size=size)
    x[rng.random(size) < 0.1] = np.nan
    return {"row": rows, "ids": pa.array([f"C{r:05d}" for r in rows]),
            "at": pa.array(np.full(size, pd.Timestamp(day, tz="UTC").value // 1000),
                           pa.timestamp("us", tz="UTC")),
            "x": x, "n": rng.integers(0, 9, size), "s": np.array([f"v{r % 7}" for r in rows], object)}


def test_merged_parts_are_the_in_process_file(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "ROW_GROUP_ROWS", 300)
    monkeypatch.setattr(parallel, "ROW_GROUP_ROWS", 300)
    rng, buckets = np.random.default_rng(11), 4
    snaps = [_snapshot(rng, "2026-01-01", 1000, 1200), _snapshot(rng, "2026-02-01", 0, 1200),
             _snapshot(rng, "2026-03-01", 650, 1200)]
    whole = TableWriter(tmp_path / "whole.parquet", KINDS, CREATED)
    parts = [TableWriter(_part(tmp_path, b), {**KINDS, ROW: "int"}, CREATED, group_rows=64)
             for b in range(buckets)]
    for snap in snaps:
        whole.write(snap["ids"], snap["at"], {c: snap[c] for c in KINDS})
        for b, part in enumerate(parts):
            mine = snap["row"] % buckets == b
            part.write(snap["ids"].filter(pa.array(mine)), snap["at"].filter(pa.array(mine)),
                       {**{c: snap[c][mine] for c in KINDS}, ROW: snap["row"][mine]})
    whole.close()
    for part in parts:
        part.close()
    assert all(len(p.groups) == 3 for p in parts) and max(parts[0].groups) > 1

    out = tmp_path / "out"
    out.mkdir()
    rows = parallel.combine_table(tmp_path / "parts", buckets, "t", out, KINDS, CREATED, None,
                                  [p.groups for p in parts])
    assert rows == 1650
    meta = pq.ParquetFile(out / "t.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [
        300, 300, 300, 100, 0, 300, 300, 50]
    assert (out / "t.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()


def _part(root, bucket: int):
    folder = root / "parts" / f"bucket_{bucket:05d}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "t.parquet"


def _labels(rng, n: int) -> pd.DataFrame:
    """NPS labels as ``nps_labels`` gives them: many answers in the same second, and the
    invitation id missing for every customer of one bucket."""
    customers = np.array([f"C{c:04d}" for c in rng.integers(0, 300, n)], object)
    at = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 50, n), unit="s")
    frame = pd.DataFrame({"customer_id": customers, "event_timestamp": at.as_unit("us"),
                          "nps": rng.integers(0, 11, n),
                          "invitation_id": np.array([f"I{i}" for i in range(n)], object),
                          "touchpoint": np.array(["app", "call"], object)[rng.integers(0, 2, n)],
                          "survey_id": np.array(["s1"] * n, object)})
    return frame.sort_values(["event_timestamp", "customer_id"], kind="stable",
                             ignore_index=True)


def _owner(frame: pd.DataFrame, buckets: int) -> pd.Series:
    return frame["customer_id"].str[1:].astype(int) % buckets


def _write_buckets(tmp_path, frame: pd.DataFrame, buckets: int) -> None:
    owner = _owner(frame, buckets)
    for b in range(buckets):
        mine = frame[owner == b].reset_index(drop=True)
        if b == 1:
            mine["invitation_id"] = None             # an all-null column in one part
        folder = tmp_path / "parts" / f"bucket_{b:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        mine.to_parquet(folder / "nps_labels.parquet", index=False, row_group_size=16)


def test_merged_nps_labels_are_the_in_process_file(tmp_path, monkeypatch):
    """The buckets' sorted label runs merged in row groups equal the in-process file (sorted by
    time then customer, written by pandas) byte for byte; also in several row groups."""
    for group_rows in (parallel.ROW_GROUP_ROWS, 500):
        monkeypatch.setattr(parallel, "ROW_GROUP_ROWS", group_rows)
        frame, buckets = _labels(np.random.default_rng(group_rows), 2000), 3
        _write_buckets(tmp_path, frame, buckets)
        frame.loc[_owner(frame, buckets) == 1, "invitation_id"] = None
        whole = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(whole, tmp_path / "whole.parquet", row_group_size=group_rows)
        out = tmp_path / "out"
        out.mkdir(exist_ok=True)
        assert parallel.combine_nps(tmp_path / "parts", buckets, out) == len(frame)
        assert ((out / "nps_labels.parquet").read_bytes()
                == (tmp_path / "whole.parquet").read_bytes()), group_rows


def test_no_nps_labels_merge_into_the_in_process_empty_file(tmp_path):
    frame = _labels(np.random.default_rng(0), 0)
    _write_buckets(tmp_path, frame, 2)
    frame.to_parquet(tmp_path / "whole.parquet", index=False)
    assert parallel.combine_nps(tmp_path / "parts", 2, tmp_path) == 0
    assert (tmp_path / "nps_labels.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()

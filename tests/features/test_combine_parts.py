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

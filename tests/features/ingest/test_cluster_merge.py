"""The cluster ingest's merge writes, a row group at a time, the file ``write_parquet`` writes
for the whole frame: same bytes past one row group, parts whose types differ (text missing from
a whole part, an integer column that is float in another part), empty parts, and nothing
left behind when the merge fails."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.ingest.cluster import merge
from features.ingest.io import write_parquet
from features.ingest.quarantine import REASON_COLUMN
from features.ingest.reasons import count_reasons


def _split(frame: pd.DataFrame, parts: int, seed: int = 0) -> list[tuple[pd.DataFrame, np.ndarray]]:
    """The frame's rows dealt to ``parts`` parts at random, each in source row order."""
    owner = np.random.default_rng(seed).integers(0, parts, len(frame))
    return [(frame.iloc[np.flatnonzero(owner == p)], np.flatnonzero(owner == p))
            for p in range(parts)]


def _merged(tmp_path, pieces, reasons: bool = False) -> tuple[bytes, int, dict]:
    stems = []
    for i, (frame, rows) in enumerate(pieces):
        stems.append(tmp_path / "parts" / f"clean_{i:05d}")
        merge.write_part(frame, rows, stems[-1])
    rows, counts = merge.merge_parts(stems, tmp_path / "merged.parquet", reasons=reasons)
    return (tmp_path / "merged.parquet").read_bytes(), rows, counts


def _in_process(tmp_path, frame: pd.DataFrame) -> bytes:
    write_parquet(frame.reset_index(drop=True), tmp_path / "whole.parquet")
    return (tmp_path / "whole.parquet").read_bytes()


def test_bytes_equal_in_process_past_one_row_group(tmp_path):
    n = merge.GROUP_ROWS + 150_001
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "customer_id": pd.Series(rng.integers(0, 10**6, n)).map("C{:07d}".format),
        "amount": rng.normal(50, 10, n),
        "when": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 400, n), "D"),
    })
    whole = _in_process(tmp_path, frame)
    merged, rows, _ = _merged(tmp_path, _split(frame, 3))
    assert rows == n
    assert pq.ParquetFile(tmp_path / "merged.parquet").metadata.num_row_groups == 2
    assert merged == whole


def test_types_that_differ_between_parts_take_the_whole_tables(tmp_path, monkeypatch):
    monkeypatch.setattr(merge, "GROUP_ROWS", 5)
    monkeypatch.setattr(merge, "PART_BATCH", 2)
    frame = pd.DataFrame({
        "customer_id": [f"C{i}" for i in range(13)],
        "note": [None] * 6 + ["late", None, "billing", None, None, "late", None],
        "count": pd.Series([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, np.nan, 13], dtype=float),
        REASON_COLUMN: ["missing: x", "", "bad: y", "", "", "bad: y", "", "", "", "", "", "",
                        "missing: x; bad: y"],
    })
    first, second = frame.iloc[:6], frame.iloc[6:].copy()
    first = first.assign(count=first["count"].astype(np.int64))      # no NaN in this part
    pieces = [(first.iloc[::2], np.arange(0, 6, 2)), (second, np.arange(6, 13)),
              (first.iloc[1::2], np.arange(1, 6, 2)), (frame.iloc[:0], np.zeros(0, np.int64))]
    whole = _in_process(tmp_path, frame)
    merged, rows, counts = _merged(tmp_path, pieces, reasons=True)
    read = pq.read_table(tmp_path / "merged.parquet")
    assert [read.schema.field(c).type for c in ("note", "count")] == [pa.string(), pa.float64()]
    assert pq.ParquetFile(tmp_path / "merged.parquet").metadata.num_row_groups == 3
    pd.testing.assert_frame_equal(read.to_pandas(), pd.read_parquet(tmp_path / "whole.parquet"))
    assert read.schema.metadata == pq.read_schema(tmp_path / "whole.parquet").metadata
    assert rows == 13 and counts == count_reasons(frame[REASON_COLUMN])
    assert merged != whole           # row groups of 5 here, so only the content is equal


def test_only_empty_parts_write_the_empty_table(tmp_path):
    frame = pd.DataFrame({"customer_id": pd.Series([], dtype=object),
                          "amount": pd.Series([], dtype=float)})
    merged, rows, counts = _merged(tmp_path, [(frame, np.zeros(0, np.int64))] * 2, reasons=False)
    assert (rows, counts) == (0, {})
    assert merged == _in_process(tmp_path, frame)


def test_a_merge_failing_midway_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(merge, "GROUP_ROWS", 2)
    frame = pd.DataFrame({"value": ["a", "b", "c", "d", "e"]})
    reads = merge._Part.slice

    def disk_gone(part, start, stop):
        if start > 0:
            raise OSError("No space left on device")
        return reads(part, start, stop)

    monkeypatch.setattr(merge._Part, "slice", disk_gone)
    with pytest.raises(OSError, match="No space"):
        _merged(tmp_path, _split(frame, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts"]


@pytest.mark.parametrize("earlier_rows,new_rows", [(7, 9), (0, 9), (7, 0), (10, 3)])
def test_earlier_rows_come_first_as_append_rows_writes_them(tmp_path, monkeypatch, earlier_rows,
                                                           new_rows):
    """An incremental ingest's merge: the earlier file's rows, then the new parts' rows in
    source order, in the earlier file's types, cut in the same row groups as
    ``append_rows`` then ``write_arrow`` cut them (5 rows a group here)."""
    from features.ingest.incremental import append_rows
    from features.ingest.io import to_arrow, write_arrow

    monkeypatch.setattr(merge, "GROUP_ROWS", 5)
    monkeypatch.setattr(merge, "PART_BATCH", 2)
    rng = np.random.default_rng(earlier_rows + new_rows)
    earlier = pd.DataFrame({"id": [f"E{i}" for i in range(earlier_rows)],
                            "n": np.arange(earlier_rows, dtype=np.int64),
                            "note": ["x"] * earlier_rows})
    new = pd.DataFrame({"id": [f"N{i}" for i in range(new_rows)],
                        "n": rng.integers(0, 9, new_rows).astype(float),   # float: earlier int
                        "note": [None] * new_rows})                # null where earlier is text
    pq.write_table(to_arrow(earlier), tmp_path / "earlier.parquet", row_group_size=5)
    expected = append_rows(pq.read_table(tmp_path / "earlier.parquet"), to_arrow(new)
                           ) if earlier_rows and new_rows else None
    rows = np.arange(100, 100 + new_rows)                 # source rows after the earlier ones
    pieces = _split(new.set_axis(rows), 2, seed=3)
    stems = []
    for i, (frame, part_rows) in enumerate(pieces):
        stems.append(tmp_path / "parts" / f"clean_{i:05d}")
        merge.write_part(frame, rows[part_rows], stems[-1])
    total, _ = merge.merge_parts(stems, tmp_path / "merged.parquet",
                                 head=tmp_path / "earlier.parquet")
    assert total == earlier_rows + new_rows
    got = pq.read_table(tmp_path / "merged.parquet")
    if expected is None:       # one side empty: append_rows returns the other as it is
        expected = (pq.read_table(tmp_path / "earlier.parquet") if earlier_rows
                    else pq.read_table(_whole(tmp_path, new)))
    assert got.schema.equals(expected.schema, check_metadata=True)
    assert got.to_pylist() == expected.to_pylist()
    sizes = [pq.ParquetFile(tmp_path / "merged.parquet").metadata.row_group(i).num_rows
             for i in range(pq.ParquetFile(tmp_path / "merged.parquet").num_row_groups)]
    assert sizes == [min(5, total - s) for s in range(0, total, 5)] or total == 0
    if earlier_rows and new_rows:
        write_arrow(expected, tmp_path / "in_process.parquet")
        assert pq.read_table(tmp_path / "in_process.parquet").equals(got)


def _whole(tmp_path, frame: pd.DataFrame):
    write_parquet(frame.reset_index(drop=True), tmp_path / "new.parquet")
    return tmp_path / "new.parquet"

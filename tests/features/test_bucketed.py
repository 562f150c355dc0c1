"""A table split once per bucket: each bucket reads back exactly its rows, in table order,
with their row numbers, whatever the pieces and the flushes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features import bucketed


def _table(rows: int) -> pa.Table:
    rng = np.random.default_rng(5)
    ids = pa.array([f"C{i % 97:04d}" for i in range(rows)]).dictionary_encode()
    return pa.table({"customer_id": ids.cast(pa.string()),
                     "amount": pa.array(rng.normal(size=rows), mask=rng.random(rows) < 0.1),
                     "kind": ids,                                 # a dictionary column
                     "at": pa.array(np.arange(rows) * 10**6, pa.timestamp("us", tz="UTC"))})


def _bucket(batch: pa.RecordBatch, count: int) -> np.ndarray:
    return np.array([int(v[1:]) % count for v in batch.column("customer_id").to_pylist()])


@pytest.mark.parametrize(("piece_rows", "flush"), [(None, 1 << 16), (700, 50), (1, 7)])
def test_each_bucket_reads_its_rows_in_table_order(tmp_path, monkeypatch, piece_rows, flush):
    monkeypatch.setattr(bucketed, "FLUSH_ROWS", flush)
    whole = _table(3000)
    path = tmp_path / "t.parquet"
    pq.write_table(whole, path, row_group_size=400)
    count = 5
    spans = bucketed.pieces(path, piece_rows=piece_rows)
    assert [s[0] for s in spans][0] == 0 and spans[-1][1] == 8
    assert sum(s[1] - s[0] for s in spans) == 8           # every row group in one piece
    for piece, (first, end, first_row) in enumerate(spans):
        file = pq.ParquetFile(path)
        written = bucketed.write_buckets(file.iter_batches(batch_size=128, row_groups=range(first, end)),
                                         file.schema_arrow, lambda b: _bucket(b, count), count,
                                         tmp_path / "split", piece, first_row)
        assert written == sum(file.metadata.row_group(g).num_rows for g in range(first, end))
    seen = []
    for b in range(count):
        got = bucketed.read_bucket(tmp_path / "split", b, len(spans))
        rows = got[bucketed.ROW].to_numpy()
        mine = np.flatnonzero(_bucket(whole.to_batches()[0], count) == b)
        np.testing.assert_array_equal(rows, mine)
        assert got.drop_columns([bucketed.ROW]).equals(whole.take(pa.array(mine)))
        seen.append(rows)
    assert np.sort(np.concatenate(seen)).tolist() == list(range(3000))   # counts add up


def test_pieces_start_at_a_row_group_and_number_rows_from_it(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(_table(1000), path, row_group_size=300)       # 300, 300, 300, 100
    assert bucketed.pieces(path, piece_rows=500) == [(0, 2, 0), (2, 4, 600)]
    assert bucketed.pieces(path, first_group=1, piece_rows=10) == [(1, 2, 300), (2, 3, 600),
                                                                  (3, 4, 900)]
    assert bucketed.pieces(path, first_group=4) == []


def test_an_empty_piece_writes_empty_buckets_of_the_schema(tmp_path):
    schema = _table(1).schema
    assert bucketed.write_buckets([], schema, lambda b: None, 3, tmp_path, 0, 0) == 0
    for b in range(3):
        got = bucketed.read_bucket(tmp_path, b, 1, columns=["amount"])
        assert got.num_rows == 0 and got.column_names == ["amount", bucketed.ROW]
    assert pc.sum(bucketed.read_bucket(tmp_path, 0, 1)[bucketed.ROW]).as_py() is None


def _runs(rng, count: int, rows: int) -> tuple[list[pa.Table], np.ndarray]:
    """``count`` runs dealing out the keys 0..rows-1 at random, each run ascending."""
    owner = rng.integers(0, count, rows)
    runs = [pa.table({"k": np.flatnonzero(owner == i), "v": np.flatnonzero(owner == i) * 2.0})
            for i in range(count)]
    return runs, np.arange(rows)


@pytest.mark.parametrize(("count", "rows", "batch", "chunk"),
                         [(5, 3000, 64, 1000), (16, 2000, 7, 333), (3, 10, 1, 4), (4, 0, 8, 5),
                          (1, 50, 50, 50)])
def test_merged_runs_come_in_key_order_in_chunks_of_the_size(count, rows, batch, chunk):
    runs, keys = _runs(np.random.default_rng(count + rows), count, rows)
    got = list(bucketed.merge_runs([r.to_batches(max_chunksize=batch) for r in runs], "k", chunk))
    assert [t.num_rows for t in got] == [chunk] * (rows // chunk) + ([rows % chunk] if rows % chunk else [])
    merged = pa.concat_tables(got) if got else pa.table({"k": pa.array([], pa.int64())})
    np.testing.assert_array_equal(merged["k"].to_numpy(), keys)
    if rows:
        np.testing.assert_array_equal(merged["v"].to_numpy(), keys * 2.0)


def test_a_run_that_ends_early_or_holds_empty_batches_is_merged():
    empty = [pa.record_batch({"k": pa.array([], pa.int64())})]
    early = pa.table({"k": [0, 1]}).to_batches()
    late = [*empty, *pa.table({"k": [2, 5, 9]}).to_batches(max_chunksize=1), *empty]
    middle = [*pa.table({"k": [3, 4]}).to_batches(), *empty, *pa.table({"k": [6, 7, 8]}).to_batches()]
    got = pa.concat_tables(bucketed.merge_runs([early, late, middle, empty], "k", 4))
    assert got["k"].to_pylist() == list(range(10))


@pytest.mark.parametrize("batch", [1, 3, 64])
def test_runs_tied_on_the_first_key_merge_as_a_stable_sort_of_every_key(batch):
    """NPS labels: (time, customer); many customers answer in the same second, in different
    runs, and a customer's equal rows (one run) keep their order."""
    rng = np.random.default_rng(batch)
    n = 600
    frame = pd.DataFrame({"t": rng.integers(0, 20, n), "c": rng.choice(list("abcdefgh"), n),
                          "seq": np.arange(n)})
    runs = [frame[frame["c"].isin(list(group))].sort_values(["t", "c"], kind="stable")
            for group in ("ab", "cde", "fgh", "")]
    got = pa.concat_tables(bucketed.merge_runs(
        [pa.Table.from_pandas(r, preserve_index=False).to_batches(max_chunksize=batch)
         for r in runs], ["t", "c"], 128, ties=True)).to_pandas()
    want = frame.sort_values(["t", "c"], kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(got, want)

"""An incremental ingest (a cycle's new month only) writes what a full rebuild writes."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from configs.settings import load_settings
from features.ingest import run_ingest
from features.ingest.incremental import APPENDED, MANIFEST
from features.ingest.run import REPORT_FILE
from features.sources.world.step import advance_world
from tests.conftest import make_world

WORLD = {"customers": 1500, "months": 6, "seed": 11, "chunk_customers": 1000}  # two chunks


@pytest.fixture(scope="module")
def stepped(tmp_path_factory) -> Path:
    """A world ingested in full (``clean``, ``quarantine``), then stepped one month."""
    root = make_world(tmp_path_factory.mktemp("incremental"), **WORLD)
    settings = load_settings(data_dir=root)
    run_ingest(settings.raw_dir, settings.clean_dir, settings.quarantine_dir, settings.ingest)
    (root / "rows_before.json").write_text(json.dumps(
        {t: pq.ParquetFile(root / "raw" / f"{t}.parquet").metadata.num_rows for t in APPENDED}))
    advance_world(root / "truth", root / "raw", None)
    return root


def _copy(world: Path, to: Path) -> Path:
    shutil.copytree(world, to)
    return to


def _both(root: Path) -> tuple[Path, Path]:
    """Ingest ``root/raw`` incrementally (from the previous outputs) and in full."""
    settings = load_settings(data_dir=root)
    run_ingest(settings.raw_dir, root / "inc" / "clean", root / "inc" / "quarantine",
               settings.ingest, previous=(settings.clean_dir, settings.quarantine_dir))
    run_ingest(settings.raw_dir, root / "full" / "clean", root / "full" / "quarantine",
               settings.ingest)
    return root / "inc", root / "full"


def _assert_same(inc: Path, full: Path) -> None:
    def listed(root: Path) -> list[Path]:
        return sorted(p.relative_to(root) for d in ("clean", "quarantine")
                      for p in (root / d).rglob("*.parquet"))

    tables = listed(full)
    assert tables == listed(inc)
    assert len(tables) >= 18
    for name in tables:
        a, b = pq.read_table(inc / name), pq.read_table(full / name)
        assert a.schema.equals(b.schema, check_metadata=True), name
        pd.testing.assert_frame_equal(a.to_pandas(), b.to_pandas(), check_exact=True, obj=str(name))
    report = "clean/" + REPORT_FILE
    assert json.loads((inc / report).read_text()) == json.loads((full / report).read_text())


def _manifest(out: Path) -> dict:
    return json.loads((out / "clean" / MANIFEST).read_text())


def _rewrite(path: Path, group: int, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Rewrite a raw export as the world does (row group by row group), one group changed."""
    source = pq.ParquetFile(path)
    tmp = path.with_name(path.name + ".new")
    with pq.ParquetWriter(tmp, source.schema_arrow, compression="zstd") as writer:
        for i in range(source.num_row_groups):
            table = source.read_row_group(i)
            if i == group:
                frame = change(table.to_pandas())
                table = pa.Table.from_pandas(frame, schema=source.schema_arrow,
                                             preserve_index=False)
            writer.write_table(table)
    tmp.replace(path)


def test_a_stepped_month_ingested_incrementally_equals_a_full_rebuild(stepped, tmp_path):
    inc, full = _both(_copy(stepped, tmp_path / "w"))
    _assert_same(inc, full)
    assert _manifest(inc)["mode"] == "incremental" and _manifest(full)["mode"] == "full"


def test_only_the_appended_rows_are_validated(stepped, tmp_path):
    inc, full = _both(_copy(stepped, tmp_path / "w"))
    before = json.loads((stepped / "rows_before.json").read_text())
    report = json.loads((inc / "clean" / REPORT_FILE).read_text())["tables"]
    validated = _manifest(inc)["rows_validated"]
    for table in APPENDED:
        appended = report[table]["rows_in"] - before[table]
        assert validated[table] == appended, table
    assert sum(validated[t] for t in APPENDED) < sum(before.values()) / 3
    assert validated["crm_customers"] == report["crm_customers"]["rows_in"]   # a snapshot: whole
    assert _manifest(full)["rows_validated"] == {t: r["rows_in"] for t, r in report.items()}


def test_a_changed_earlier_row_forces_a_full_rebuild(stepped, tmp_path, caplog):
    root = _copy(stepped, tmp_path / "w")

    def late_fee(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[3, "amount"] = frame.loc[3, "amount"] + 1.0   # a corrected old invoice
        return frame

    _rewrite(root / "raw" / "billing_invoices.parquet", 0, late_fee)
    with caplog.at_level(logging.INFO, logger="features.ingest.run"):
        inc, full = _both(root)
    assert _manifest(inc)["mode"] == "full"
    assert _manifest(inc)["full_rebuild_reason"] == "billing_invoices: earlier rows changed"
    assert "ingest: full rebuild (billing_invoices: earlier rows changed)" in caplog.text
    _assert_same(inc, full)


def test_bad_rows_of_the_new_month_get_the_full_rebuilds_reasons(stepped, tmp_path):
    root = _copy(stepped, tmp_path / "w")
    orders = root / "raw" / "orders.parquet"
    first_id = pq.ParquetFile(orders).read_row_group(0).column("order_id")[0].as_py()
    last = pq.ParquetFile(orders).num_row_groups - 1

    def break_rows(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[0, "order_id"] = first_id             # an earlier order's key again
        frame.loc[1, "customer_id"] = "NOBODY"           # no such customer
        frame.loc[2, "status"] = "lost"                  # not a status
        frame.loc[3, "amount"] = -5.0                    # negative
        return frame

    _rewrite(orders, last, break_rows)
    inc, full = _both(root)
    assert _manifest(inc)["mode"] == "incremental"
    _assert_same(inc, full)
    reasons = pd.read_parquet(inc / "quarantine" / "orders.parquet")["_reason"]
    assert reasons.str.contains("duplicate key").any()
    assert reasons.str.contains("unknown customer").any()
    assert reasons.str.contains("status: must be one of").any()
    assert reasons.str.contains("amount: ").any()


def test_other_ingest_settings_force_a_full_rebuild(stepped, tmp_path):
    root = _copy(stepped, tmp_path / "w")
    settings = load_settings(data_dir=root)
    params = settings.ingest.model_copy(update={"phone_digits": settings.ingest.phone_digits - 1})
    run_ingest(settings.raw_dir, root / "o" / "clean", root / "o" / "quarantine", params,
               previous=(settings.clean_dir, settings.quarantine_dir))
    assert _manifest(root / "o")["full_rebuild_reason"] == "the ingest settings changed"


def test_an_ingest_in_place_equals_a_full_rebuild(stepped, tmp_path):
    root = _copy(stepped, tmp_path / "w")
    settings = load_settings(data_dir=root)
    run_ingest(settings.raw_dir, settings.clean_dir, settings.quarantine_dir, settings.ingest,
               previous=(settings.clean_dir, settings.quarantine_dir))
    run_ingest(settings.raw_dir, root / "full" / "clean", root / "full" / "quarantine",
               settings.ingest)
    assert _manifest(root)["mode"] == "incremental"
    _assert_same(root, root / "full")


def test_the_cycles_ingest_is_staged_and_incremental(stepped, tmp_path, monkeypatch):
    import features.ingest.run as run
    from pipelines.cycle import plain_stages

    root = _copy(stepped, tmp_path / "w")
    settings = load_settings(data_dir=root)
    before = {p: p.read_bytes() for d in (settings.clean_dir, settings.quarantine_dir)
              for p in sorted(d.rglob("*")) if p.is_file()}
    real = run.process_table

    def fail_at_orders(table, *args, **kwargs):
        if table == "orders":
            raise RuntimeError("disk full")
        return real(table, *args, **kwargs)

    monkeypatch.setattr(run, "process_table", fail_at_orders)
    ingest = plain_stages(settings).ingest
    with pytest.raises(RuntimeError, match="disk full"):
        ingest()
    after = {p: p.read_bytes() for d in (settings.clean_dir, settings.quarantine_dir)
             for p in sorted(d.rglob("*")) if p.is_file()}
    assert after == before                                  # the previous outputs, untouched
    monkeypatch.setattr(run, "process_table", real)
    ingest()
    assert json.loads((settings.clean_dir / MANIFEST).read_text())["mode"] == "incremental"

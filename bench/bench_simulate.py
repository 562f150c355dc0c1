"""Benchmark: `cem simulate --customers 1000000 --months 24` wall time and peak memory.

Baseline in the same run ("write floor"): drawing the same number of rows of random
numeric columns and writing them to Parquet with the same compression, i.e. what
the simulator would cost if it did nothing but produce and write its output.
Goal (issue 2): at most 5 minutes and 8 GB on the 2-core machine.

    .venv/bin/python bench/bench_simulate.py [--customers N] [--months M]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_simulation(customers: int, months: int, data_dir: Path) -> tuple[float, float, dict]:
    """Wall seconds and peak RSS (GB) of the real CLI command in a child process."""
    cem = Path(sys.executable).parent / "cem"
    cmd = [str(cem), "simulate", "--customers", str(customers), "--months", str(months),
           "--data-dir", str(data_dir)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    rows = json.loads((data_dir / "truth" / "world.json").read_text())["rows"]
    return wall, peak_gb, rows


def write_floor(rows: dict, out: Path) -> float:
    """Seconds to generate and write the same row counts as 6 random columns each."""
    code = f"""
import numpy as np, pyarrow as pa, pyarrow.parquet as pq, time
rng = np.random.default_rng(0)
rows = {json.dumps(rows)}
t = time.perf_counter()
for name, n in rows.items():
    w = None
    for start in range(0, n, 1_000_000):
        m = min(1_000_000, n - start)
        tab = pa.table({{f"c{{i}}": rng.random(m) for i in range(6)}})
        w = w or pq.ParquetWriter("{out}/" + name + ".parquet", tab.schema, compression="zstd")
        w.write_table(tab)
    w and w.close()
print(time.perf_counter() - t)
"""
    out.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(res.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--months", type=int, default=24)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cem-bench-"))
    try:
        wall, peak, rows = run_simulation(args.customers, args.months, tmp / "data")
        floor = write_floor(rows, tmp / "floor")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = sum(rows.values())
    print(f"cem simulate --customers {args.customers} --months {args.months}")
    print(f"  rows written           {total:,}")
    print(f"  wall time              {wall:8.1f} s   (goal <= 300 s: {wall / 300:.2f} of budget)")
    print(f"  peak memory (RSS)      {peak:8.2f} GB  (goal <= 8 GB: {peak / 8:.2f} of budget)")
    print(f"  baseline write floor   {floor:8.1f} s   (random columns, same rows, zstd Parquet)")
    print(f"  ratio simulate / floor {wall / floor:8.2f}x")


if __name__ == "__main__":
    main()

"""Benchmark: the closed loop's memory across cycles, in one process (issue "The closed loop").

A world of ``--customers`` is built as in ``bench_cycle.py`` (search off, no feature ceiling
unless asked), then ``--cycles`` cycles of ``pipelines.cycle_flow.cycle_flow`` run with a retrain
every ``--retrain-every`` months. After each cycle, with a full ``gc.collect()``, it prints:

* RSS now and the process's peak (VmRSS / VmHWM), with cycle 1 as the baseline and the ratio;
* with ``--trim``: RSS after glibc's ``malloc_trim(0)``: what the allocator held but did not
  return (a high-water mark, not a leak);
* what is alive: LightGBM boosters, DataFrames (and their bytes), open matplotlib figures,
  Arrow's pool bytes, the ``lru_cache`` sizes of the product's modules, and the object types
  that grew most since cycle 1 (``gc`` counts);
* with ``--tracemalloc``: the allocations retained since cycle 1, top ``--top`` by size
  (Python and numpy memory; Arrow's pool is not traced). It roughly doubles the run time.

``--plain`` runs the same stages without Prefect (``pipelines.cycle.plain_stages``), to tell
the product's retention from the orchestrator's.

    .venv/bin/python bench/bench_cycle_memory.py [--customers 8000] [--cycles 6]
        [--retrain-every 1] [--seed 1] [--trim] [--tracemalloc] [--top 8] [--plain] [--keep DIR]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

from bench_cycle import build, built_before, configure  # same folder: run as a script

GB = 2**30


def status_gb(field: str) -> float:
    """A /proc/self/status memory line (VmRSS: now, VmHWM: the peak) in GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / GB
    return float("nan")


def malloc_trim() -> None:
    """Give glibc's free heap pages back to the system (what the allocator held, not objects)."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def alive() -> dict:
    """Counts and bytes of the big things still reachable after the cycle."""
    import lightgbm as lgb
    import pandas as pd
    import pyarrow as pa

    objects = gc.get_objects()
    frames = [o for o in objects if isinstance(o, pd.DataFrame)]
    figures = 0
    if "matplotlib.pyplot" in sys.modules:
        figures = len(sys.modules["matplotlib.pyplot"].get_fignums())
    return {"boosters": sum(isinstance(o, lgb.Booster) for o in objects),
            "datasets": sum(isinstance(o, lgb.Dataset) for o in objects),
            "frames": len(frames),
            "frame_mb": sum(f.memory_usage(index=True, deep=False).sum() for f in frames) / 2**20,
            "figures": figures, "arrow_mb": pa.total_allocated_bytes() / 2**20,
            "lru": lru_sizes(), "duckdb": ibis_duckdb(), "types": Counter(type(o).__name__ for o in objects),
            "classes": Counter(f"{o.__module__}.{o.__qualname__}" for o in objects
                               if isinstance(o, type))}


def ibis_duckdb() -> dict:
    """Views, tables and buffer memory of ibis's default DuckDB connection (the process-wide
    one Feast's DuckDB offline store reads through when it materializes)."""
    ibis = sys.modules.get("ibis")
    backend = None if ibis is None else ibis.options.default_backend
    if backend is None:
        return {}
    con = backend.con
    count = "SELECT count(*) FROM duckdb_{}() WHERE NOT internal"
    return {"views": con.execute(count.format("views")).fetchone()[0],
            "tables": con.execute(count.format("tables")).fetchone()[0],
            "mb": (con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0]
                   or 0) / 2**20}


def lru_sizes() -> dict[str, int]:
    """Entries held by every ``functools.lru_cache`` in the product's modules."""
    sizes = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith(("models", "features", "serving", "pipelines", "configs")):
            continue
        for attr, value in list(vars(module).items()):
            if type(value).__name__ == "_lru_cache_wrapper":
                sizes[f"{name}.{attr}"] = value.cache_info().currsize
    return sizes


def run_cycles(args, root: Path):
    """Yield after each cycle (the cycle's line)."""
    if args.plain:
        from configs.settings import load_settings
        from pipelines.cycle import plain_stages, run_cycle

        for _ in range(args.cycles):
            settings = load_settings(data_dir=root)
            yield run_cycle(settings, plain_stages(settings))
    else:
        from pipelines.cycle_flow import cycle_flow

        for _ in range(args.cycles):
            yield cycle_flow(root)


def report(cycle: int, line: dict, wall: float, args, base: dict, now: dict, snaps: list) -> None:
    ratio = now["rss"] / base["rss"] if base else 1.0
    trimmed = (f" -> {now['arrow_released']:.2f} GB after Arrow's release_unused -> "
               f"{now['trimmed']:.2f} GB after malloc_trim" if args.trim else "")
    print(f"cycle {cycle} ({line['month']:%Y-%m}{', retrained' if line['retrained'] else ''}): "
          f"{wall:.0f} s | RSS {now['rss']:.2f} GB (x{ratio:.2f} of cycle 1){trimmed}, "
          f"peak {now['hwm']:.2f} GB (cycle 1: {(base or now)['hwm']:.2f})", flush=True)
    a = now["alive"]
    print(f"  alive: {a['boosters']} boosters, {a['datasets']} lgb datasets, {a['frames']} "
          f"DataFrames ({a['frame_mb']:.0f} MB), {a['figures']} figures, Arrow {a['arrow_mb']:.0f} MB; "
          f"lru {sum(a['lru'].values())} entries; ibis's DuckDB {a['duckdb'] or 'not open'}",
          flush=True)
    if base:
        grown = (a["types"] - base["alive"]["types"]).most_common(args.top)
        print("  types grown since cycle 1: " + ", ".join(f"{k} +{v}" for k, v in grown), flush=True)
        grown = (a["classes"] - base["alive"]["classes"]).most_common(args.top)
        print("  classes defined since cycle 1: " + ", ".join(f"{k} +{v}" for k, v in grown),
              flush=True)
    if base and len(snaps) > 1:
        print(f"  traced {now['traced']:.0f} MB (cycle 1: {base['traced']:.0f} MB); retained since "
              "cycle 1:", flush=True)
        for stat in snaps[-1].compare_to(snaps[0], "lineno")[: args.top]:
            frame = stat.traceback[0]
            print(f"    {stat.size_diff / 2**20:+8.1f} MB {stat.count_diff:+7d} blocks  "
                  f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}", flush=True)


def measure(args) -> dict:
    gc.collect()
    out = {"rss_before_gc": status_gb("VmRSS")}
    gc.collect()
    out.update(rss=status_gb("VmRSS"), hwm=status_gb("VmHWM"), alive=alive())
    if args.tracemalloc:
        out["traced"] = tracemalloc.get_traced_memory()[0] / 2**20
    if args.trim:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()   # Arrow's own allocator (mimalloc) first
        out["arrow_released"] = status_gb("VmRSS")
        malloc_trim()
        out["trimmed"] = status_gb("VmRSS")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=8000)
    ap.add_argument("--cycles", type=int, default=6)
    ap.add_argument("--retrain-every", type=int, default=1, help="cycle.retrain_every_months")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=float, default=0.02)
    ap.add_argument("--ceiling-every", type=int, default=0,
                    help="refit the feature ceiling for every N-th cycle's plan (0: never)")
    ap.add_argument("--trim", action="store_true", help="malloc_trim(0) after each cycle")
    ap.add_argument("--tracemalloc", action="store_true", help="diff of traced allocations")
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--plain", action="store_true", help="the stages without Prefect")
    ap.add_argument("--skip-nps", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="build (or carry on) the world here")
    args = ap.parse_args()
    configure(args, args.seed)
    os.environ["CEM_CYCLE__RETRAIN_EVERY_MONTHS"] = str(args.retrain_every)
    root = args.keep or Path(tempfile.mkdtemp(prefix="cem-cycle-memory-"))
    try:
        if not built_before(root):
            built = build(root, nps=not args.skip_nps)
            print(f"world of {args.customers:,} built in {sum(built.values()):.0f} s; "
                  f"RSS {status_gb('VmRSS'):.2f} GB, peak {status_gb('VmHWM'):.2f} GB", flush=True)
        if args.tracemalloc:
            tracemalloc.start(1)
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
              f"{os.getloadavg()[2]:.2f}", flush=True)
        base: dict = {}
        snaps: list = []
        started = time.perf_counter()
        for cycle, line in enumerate(run_cycles(args, root), start=1):
            wall = time.perf_counter() - started
            now = measure(args)
            if args.tracemalloc:
                snaps = [*snaps[:1], tracemalloc.take_snapshot()]
            report(cycle, line, wall, args, base, now, snaps)
            base = base or now
            started = time.perf_counter()
        print(f"load average at the end {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

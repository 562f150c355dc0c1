"""Benchmark: `cem simulate` in-process vs on a LocalCluster (`cluster.address: local`).

Both runs are the real CLI in a child process with the same parameters; the cluster run
starts 2 single-thread worker processes (``--memory-limit`` each). Wall time includes
Prefect's and the cluster's start. Peak memory is sampled every 0.2 s over the whole
process tree (driver, Prefect's server, Dask workers): the largest sum of RSS seen, and the
driver's own peak. Afterwards every output file is compared byte for byte (world.json
apart, which names its folders). So far only the simulation runs on the cluster
(docs/cluster.md); ingest, features and scoring join this script as they move.

    .venv/bin/python bench/bench_cluster.py [--customers 1000000 ...] [--months 24]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def run(customers: int, months: int, data_dir: Path, cluster_env: dict[str, str]) -> dict:
    """Wall seconds, peak tree RSS and driver RSS (GB) of one `cem simulate`."""
    cem = Path(sys.executable).parent / "cem"
    env = {**os.environ, **cluster_env}
    cmd = [str(cem), "simulate", "--customers", str(customers), "--months", str(months),
           "--data-dir", str(data_dir)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    peak = {"tree": 0, "driver": 0}
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                rss = [p.memory_info().rss for p in procs if p.is_running()]
                peak["tree"] = max(peak["tree"], sum(rss))
                peak["driver"] = max(peak["driver"], rss[0])
            except psutil.Error:
                pass
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    done.set()
    sampler.join()
    if code:
        raise SystemExit(f"cem simulate failed ({code}) with {cluster_env}")
    return {"wall": time.perf_counter() - started, "tree_gb": peak["tree"] / 1e9,
            "driver_gb": peak["driver"] / 1e9}


@contextmanager
def scratch(keep: Path | None, prefix: str) -> Iterator[Path]:
    """The benchmark's data folder (kept under ``keep``, else temporary), with the machine's
    load average printed before and after: figures taken on a busy machine say so."""
    base = keep or Path(tempfile.mkdtemp(prefix=prefix))
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    try:
        yield base
    finally:
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)


def identical(a: Path, b: Path) -> tuple[int, list[str]]:
    """Files compared and the names of those that differ (world.json skipped)."""
    names = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    other = sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    differ = sorted(set(names) ^ set(other))
    for name in set(names) & set(other):
        if not name.endswith("world.json") and \
                subprocess.run(["cmp", "-s", str(a / name), str(b / name)]).returncode:
            differ.append(name)
    return len(names), sorted(differ)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="6GB")
    ap.add_argument("--keep", type=Path, help="keep the data folders under this folder")
    args = ap.parse_args()
    cluster = {"CEM_CLUSTER__ADDRESS": "local", "CEM_CLUSTER__WORKERS": str(args.workers),
               "CEM_CLUSTER__THREADS_PER_WORKER": "1", "CEM_CLUSTER__MEMORY_LIMIT": args.memory_limit}
    with scratch(args.keep, "cem-bench-cluster-") as base:
        print("| customers | run | wall | peak RSS, all processes | peak RSS, driver |")
        print("|---|---|---|---|---|")
        for n in args.customers:
            folders = {}
            for name, env in (("in-process", {"CEM_CLUSTER__ADDRESS": ""}),
                              (f"LocalCluster {args.workers}x1 thread", cluster)):
                folders[name] = base / f"{n}-{name.split()[0]}"
                shutil.rmtree(folders[name], ignore_errors=True)
                r = run(n, args.months, folders[name], env)
                print(f"| {n:,} | {name} | {r['wall']:.1f} s | {r['tree_gb']:.2f} GB | "
                      f"{r['driver_gb']:.2f} GB |", flush=True)
            count, differ = identical(*folders.values())
            print(f"{n:,}: {count} files compared, "
                  f"{'all identical' if not differ else 'DIFFERENT: ' + ', '.join(differ)}")
            if args.keep is None:
                for folder in folders.values():
                    shutil.rmtree(folder, ignore_errors=True)

if __name__ == "__main__":
    main()

"""Benchmark: simulate -> ingest -> features -> score, in-process and on a LocalCluster.

The issue "Beyond one machine" asks for the chain at 1M, 2M and 4M customers on a LocalCluster
of 2 single-thread workers with a memory limit each, with wall time and peak memory per
worker, and the in-process time at the smallest size. Each stage is the real `cem` command in
a child process; memory is sampled every 0.2 s per process of the command's tree (the driver,
Prefect's server, each Dask worker) and the largest value of each kind is kept.

Scoring needs champion models, and training is not part of this chain: the models are
trained once on a small world of the same generator (``--model-customers``) and its MLflow
store is copied into every data folder (a data folder is self-contained, docs/architecture.md),
so every run scores with the same models.

    .venv/bin/python bench/bench_cluster_chain.py [--customers 1000000 2000000 4000000]
        [--months 24] [--in-process-at 1000000] [--model-customers 20000] [--keep DIR]
        [--serving-db sqlite|postgres] [--models DIR] [--until ingest|features|score]
        [--start ingest|features|score (with --keep: re-run from a stage on kept folders)]

``--serving-db postgres`` starts a throw-away PostgreSQL server (as the tests do) and gives
each run its own database, the setting docs/cluster.md gives cluster runs: the buckets then
write their customers' rows themselves, and the client never gathers the tags.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from bench_cluster import scratch

ROOT = Path(__file__).resolve().parent.parent

STAGES = ("simulate", "ingest", "features", "score")


def kind(proc: psutil.Process, driver: int) -> str:
    """driver, prefect (its local API server), worker (a Dask worker process) or other."""
    if proc.pid == driver:
        return "driver"
    line = " ".join(proc.cmdline())
    if "prefect" in line and "server" in line:
        return "prefect"
    return "worker" if "multiprocessing" in line or "distributed" in line else "other"


def run(args: list[str], env: dict[str, str]) -> dict:
    """Wall seconds and peak RSS (GB) by process kind of one `cem` command."""
    cem = Path(sys.executable).parent / "cem"
    started = time.perf_counter()
    proc = subprocess.Popen([str(cem), *args], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak: dict[str, float] = {}
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                for p in [root, *root.children(recursive=True)]:
                    name = kind(p, proc.pid)
                    peak[name] = max(peak.get(name, 0.0), p.memory_info().rss / 1e9)
            except psutil.Error:
                pass
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"cem {' '.join(args)} failed ({proc.returncode}): {err.strip()[-400:]}")
    return {"wall": time.perf_counter() - started, **peak}


def trained_models(root: Path, customers: int, months: int) -> Path:
    """The MLflow store of a small world of the same generator, trained with the defaults."""
    env = {"CEM_CLUSTER__ADDRESS": "", "CEM_TRAIN__SEARCH__TRIALS": "0"}
    data = root / "models-world"
    run(["simulate", "--customers", str(customers), "--months", str(months),
         "--data-dir", str(data)], env)
    for stage in ("ingest", "features", "train"):
        run([stage, "--data-dir", str(data)], env)
    return data / "mlflow"


def chain(data: Path, customers: int, months: int, models: Path, env: dict,
          name: str, until: str = "score", start: str = "simulate") -> dict[str, dict]:
    """Each stage's result from ``start`` up to ``until``, printed as it ends (a later
    stage's failure keeps the earlier rows)."""
    out = {}
    for stage in STAGES[STAGES.index(start):STAGES.index(until) + 1]:
        if stage == "simulate":
            args = ["simulate", "--customers", str(customers), "--months", str(months)]
        else:
            args = [stage]
        if stage == "score":
            shutil.copytree(models, data / "mlflow", dirs_exist_ok=True)
        out[stage] = run([*args, "--data-dir", str(data)], env)
        print(row(customers, name, stage, out[stage]), flush=True)
    return out


def row(customers: int, name: str, stage: str, r: dict) -> str:
    def gb(key: str) -> str:
        return f"{r[key]:.2f}" if key in r else "-"
    return (f"| {customers:,} | {name} | {stage} | {r['wall']:.1f} | {gb('driver')} | "
            f"{gb('worker')} | {gb('prefect')} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, nargs="+", default=[1_000_000, 2_000_000, 4_000_000])
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--in-process-at", type=int, nargs="*", default=None,
                    help="sizes also run in-process (default: the smallest)")
    ap.add_argument("--model-customers", type=int, default=20_000)
    ap.add_argument("--models", type=Path, help="an MLflow store trained by an earlier run "
                    "(its models-world/mlflow), instead of training one")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="6GB")
    ap.add_argument("--keep", type=Path, help="keep the data folders under this folder")
    ap.add_argument("--serving-db", choices=["sqlite", "postgres"], default="sqlite",
                    help="the serving database of the scoring runs")
    ap.add_argument("--until", choices=STAGES[1:], default="score",
                    help="the last stage run (the chain's figures then end there)")
    ap.add_argument("--start", choices=STAGES, default="simulate",
                    help="the first stage run, on the folders an earlier run kept under "
                         "--keep (the chain's figures then start there)")
    args = ap.parse_args()
    if args.start != "simulate" and args.keep is None:
        ap.error("--start needs --keep: the folders of the earlier stages")
    if STAGES.index(args.start) > STAGES.index(args.until):
        ap.error(f"--start {args.start} comes after --until {args.until}")
    in_process = set(args.in_process_at if args.in_process_at is not None else [min(args.customers)])
    cluster = {"CEM_CLUSTER__ADDRESS": "local", "CEM_CLUSTER__WORKERS": str(args.workers),
               "CEM_CLUSTER__THREADS_PER_WORKER": "1", "CEM_CLUSTER__MEMORY_LIMIT": args.memory_limit}
    with scratch(args.keep, "cem-bench-chain-") as base, serving_server(args.serving_db) as server:
        started = time.perf_counter()
        if args.until != "score":
            models = None
        elif args.models is not None:
            models = args.models
            print(f"models from {models}", flush=True)
        else:
            models = trained_models(base, args.model_customers, args.months)
            print(f"models trained on {args.model_customers:,} customers in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
        print("| customers | run | stage | wall s | driver GB | largest worker GB | Prefect server GB |")
        print("|---|---|---|---|---|---|---|")
        totals = {}
        for n in args.customers:
            runs = [(f"LocalCluster {args.workers}x1", cluster)]
            if n in in_process:
                runs.insert(0, ("in-process", {"CEM_CLUSTER__ADDRESS": ""}))
            for name, env in runs:
                db = {} if server is None else {"CEM_SERVING__DATABASE_URL": database(server, n, name)}
                totals[(n, name)] = sized_run(base, n, name, {**env, **db}, models, args)
        print_ratios(totals, min(args.customers))


@contextlib.contextmanager
def serving_server(kind: str):
    """A PostgreSQL server's URL for ``postgres`` (stopped and removed at the end), else None."""
    if kind != "postgres":
        yield None
        return
    sys.path.insert(0, str(ROOT))
    from tests.servers import postgres_server

    with postgres_server() as url:
        yield url


def database(server: str, n: int, name: str) -> str:
    """A new database on ``server`` for one run (a run reads the previous run's tags: each
    size and setting starts from none, as on SQLite with its own data folder)."""
    import psycopg

    db = f"cem_{n}_{name.split()[0].replace('-', '_').lower()}"
    dsn = server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db}")
        conn.execute(f"CREATE DATABASE {db}")
    return server.rsplit("/", 1)[0] + f"/{db}"


def sized_run(base: Path, n: int, name: str, env: dict, models: Path,
              args) -> tuple[float, float]:
    """One size on one setting: a row per stage and one for the chain; its wall seconds and
    its largest worker's peak GB (0 in-process)."""
    data = base / f"{n}-{name.split()[0]}"
    if args.start == "simulate":
        shutil.rmtree(data, ignore_errors=True)
    elif not data.is_dir():
        raise SystemExit(f"--start {args.start}: no folder {data} kept by an earlier run")
    result = chain(data, n, args.months, models, env, name, args.until, args.start)
    total = sum(r["wall"] for r in result.values())
    peak = max(r.get("worker", 0.0) for r in result.values())
    print(f"| {n:,} | {name} | **chain** | {total:.1f} | | {f'{peak:.2f}' if peak else '-'} | |",
          flush=True)
    print(f"disk of {data.name}: {folder_gb(data):.2f} GB, of which the online store "
          f"{folder_gb(data / 'feast' / 'online.db'):.2f} GB", flush=True)
    if args.keep is None:
        shutil.rmtree(data, ignore_errors=True)
    return total, peak


def folder_gb(path: Path) -> float:
    """Bytes on disk under ``path`` (a file or a folder), in GB."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_blocks * 512 for p in files) / 1e9


def print_ratios(totals: dict, small: int) -> None:
    """Each size's chain time and largest worker's peak against the smallest size on the same
    cluster, and the cluster against in-process at the smallest size."""
    for (n, name), (wall, peak) in totals.items():
        ref = totals.get((small, name))
        if name != "in-process" and ref:
            print(f"{n:,} {name}: {wall:.0f} s, {wall / ref[0]:.2f}x the {small:,} time on the "
                  f"same cluster; largest worker {peak:.2f} GB, {peak / ref[1]:.2f}x its "
                  f"{small:,} peak")
    if (small, "in-process") in totals:
        cl = next(w for (n, name), (w, _) in totals.items() if n == small and name != "in-process")
        print(f"{small:,}: cluster / in-process = {cl / totals[(small, 'in-process')][0]:.2f}")

if __name__ == "__main__":
    main()

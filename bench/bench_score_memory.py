"""Benchmark: the scoring client's memory by step, at several book sizes.

The issue "Beyond one machine" asks that no process hold every customer: on a cluster the
workers' peaks are flat (``bench_cluster_chain.py``), but `cem score`'s own process (the
client) still arbitrates every customer's candidates and values the plans with the world's
truth. This script measures that process step by step: `cem score`'s task
(``pipelines.flows.score_task``: the run and its review on the built-in world) in a fresh
child process per data folder, its RSS sampled every 50 ms. Each step of
``serving.batch`` / ``serving.cluster_scoring`` (``_step``) and each function of the truth
evaluation prints its start, peak and end. The smallest book of the same run is the
baseline: every step's growth over the models' footprint is printed as a ratio to it,
against the ratio of the customers (flat memory: 1.0; linear: the customers' ratio).

    .venv/bin/python bench/bench_score_memory.py --customers 250000 1000000 [--months 12]
        [--cluster] [--keep DIR]
    .venv/bin/python bench/bench_score_memory.py --data-dir DIR [DIR ...] [--cluster]
        [--serving-db sqlite|postgres]

``--customers`` builds each world (simulate, ingest, features; models trained once on
``--model-customers`` and copied, as ``bench_cluster_chain.py`` does); ``--data-dir`` reuses
folders that have features and champion models. ``--serving-db postgres`` scores each folder
into a new database of a throw-away PostgreSQL server (``bench_cluster_chain.serving_server``):
on a cluster the buckets then write their own rows and the client never gathers the tags or
tag events (the setting docs/cluster.md gives cluster runs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

MEASURED = ("policy_value", "read_true_effects", "true_values", "risk_ranked_candidates",
            "random_candidates", "arbitrate", "ceiling_effects", "ceiling_candidates",
            "ungated_candidates", "comparison_values", "plan_value")


class Sampler:
    """This process's RSS, sampled every 50 ms; ``measured`` prints a step's start, peak, end
    (steps may nest: each keeps its own peak)."""

    def __init__(self) -> None:
        import psutil

        self.proc, self.active, self.rows = psutil.Process(), [], []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            rss = self.proc.memory_info().rss
            for step in list(self.active):
                step["peak"] = max(step["peak"], rss)
            time.sleep(0.05)

    @contextlib.contextmanager
    def measured(self, name: str):
        start, t0 = self.proc.memory_info().rss, time.perf_counter()
        mine = {"peak": start}
        self.active.append(mine)
        try:
            yield
        finally:
            self.active = [step for step in self.active if step is not mine]
            end = self.proc.memory_info().rss
            row = {"step": name, "start": start / 1e9, "peak": max(mine["peak"], end) / 1e9,
                   "end": end / 1e9, "seconds": time.perf_counter() - t0}
            self.rows.append(row)
            print(f"  {name:32s} start {row['start']:5.2f}  peak {row['peak']:5.2f}  end "
                  f"{row['end']:5.2f} GB  {row['seconds']:7.1f} s", flush=True)


def run_stage(data: Path, cluster: bool, out: Path) -> None:
    """In this (child) process: score ``data`` with every step measured; rows to ``out``."""
    sampler = Sampler()
    import serving.batch as batch
    import serving.cluster_scoring as cluster_scoring
    from models.prescribe import evaluate

    step = batch._step

    @contextlib.contextmanager
    def measured_step(timings, name):
        with sampler.measured(name), step(timings, name):
            yield

    batch._step = cluster_scoring._step = measured_step
    for name in MEASURED:
        fn = getattr(evaluate, name)

        def wrap(*a, _fn=fn, _name=name, **k):
            with sampler.measured("truth." + _name):
                return _fn(*a, **k)

        setattr(evaluate, name, wrap)
    from configs.settings import load_settings
    from pipelines.cluster import cluster_client, scheduler_address
    from pipelines.flows import score_task

    settings = load_settings(data_dir=data)
    params = settings.cluster.model_copy(update={"address": "local" if cluster else ""})
    started = time.perf_counter()
    with cluster_client(params, quiet=True) as client, sampler.measured("score_task (whole)"):
        summary = score_task.fn(data, None, scheduler_address(client))
    out.write_text(json.dumps({"rows": sampler.rows, "seconds": time.perf_counter() - started,
                               "active": summary["customers"]}))


def child(data: Path, cluster: bool, database_url: str | None = None) -> dict:
    """One measured run in a fresh process (its peak is the run's alone)."""
    out = data / "bench_score_memory.json"
    env = {**os.environ, "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")}
    if database_url:
        env["CEM_SERVING__DATABASE_URL"] = database_url
    cmd = [sys.executable, __file__, "--stage", "run", "--data-dir", str(data)]
    subprocess.run(cmd + (["--cluster"] if cluster else []), env=env, check=True)
    return json.loads(out.read_text())


def build(base: Path, sizes: list[int], months: int, model_customers: int) -> list[Path]:
    """A data folder per size: simulated, ingested, features built, models copied in."""
    from bench_cluster_chain import run, trained_models

    env = {"CEM_CLUSTER__ADDRESS": ""}
    models = trained_models(base, model_customers, months)
    folders = []
    for n in sizes:
        data = base / f"{n}"
        if not (data / "mlflow").exists():
            run(["simulate", "--customers", str(n), "--months", str(months), "--data-dir", str(data)], env)
            for stage in ("ingest", "features"):
                run([stage, "--data-dir", str(data)], env)
            shutil.copytree(models, data / "mlflow", dirs_exist_ok=True)
        folders.append(data)
    return folders


def report(results: list[tuple[Path, dict]]) -> None:
    """Each step's peak and its growth over the process's footprint before the first step,
    per book, and that growth's ratio to the smallest book's."""
    base_path, base = min(results, key=lambda r: r[1]["active"] or 0)
    floor = {p: r["rows"][0]["start"] for p, r in results}
    print("\n| step | " + " | ".join(f"{r['active']:,} active: peak GB (over start)" for _, r in results)
          + " | ratio to the smallest |")
    print("|---|" + "---|" * (len(results) + 1))
    steps = [row["step"] for row in base["rows"]]
    for name in dict.fromkeys(steps):
        cells, growth = [], {}
        for path, r in results:
            peaks = [x["peak"] for x in r["rows"] if x["step"] == name]   # a repeated step: its largest
            if not peaks:
                cells.append("-")
                continue
            growth[path] = max(peaks) - floor[path]
            cells.append(f"{max(peaks):.2f} (+{growth[path]:.2f})")
        ratios = ", ".join(f"{growth[p] / growth[base_path]:.2f}" for p, _ in results
                           if p != base_path and p in growth and growth.get(base_path, 0) > 0.01)
        print(f"| {name} | " + " | ".join(cells) + f" | {ratios or '-'} |")
    for path, r in results:
        if path != base_path:
            print(f"{r['active']:,} active customers: {r['active'] / base['active']:.2f}x the "
                  f"baseline's {base['active']:,} (a linear step's ratio)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, nargs="*", default=[])
    ap.add_argument("--data-dir", type=Path, nargs="*", default=[])
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--model-customers", type=int, default=20_000)
    ap.add_argument("--cluster", action="store_true", help="a LocalCluster from the folder's settings")
    ap.add_argument("--keep", type=Path, help="keep the built worlds under this folder")
    ap.add_argument("--serving-db", choices=["sqlite", "postgres"], default="sqlite",
                    help="the folder's SQLite serving database, or a new PostgreSQL database per folder")
    ap.add_argument("--stage", choices=["run"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage == "run":
        return run_stage(args.data_dir[0], args.cluster, args.data_dir[0] / "bench_score_memory.json")
    if not args.customers and not args.data_dir:
        ap.error("give --customers or --data-dir")
    from bench_cluster import scratch
    from bench_cluster_chain import database, serving_server

    with scratch(args.keep, "cem-bench-score-memory-") as base, \
            serving_server(args.serving_db) as server:
        folders = list(args.data_dir)
        if args.customers:
            folders += build(base, args.customers, args.months, args.model_customers)
        results = []
        for i, data in enumerate(folders):
            print(f"{data} ({'LocalCluster' if args.cluster else 'in-process'}, "
                  f"{args.serving_db}):", flush=True)
            url = None if server is None else database(server, i, "memory")
            results.append((data, child(data, args.cluster, url)))
        report(results)


if __name__ == "__main__":
    main()

"""Benchmarks of the serving side, in two parts.

``write``: ``serving.db.write_scoring_run`` of a synthetic run of ``--customers`` scored
customers (tags for all, reasons for those with a planned action) and ``--actions``
planned actions, into a fresh SQLite file or ``--url`` (PostgreSQL); prints seconds and
peak RSS. Goal (issue 5): about 60 s or less for 1M customers + 50k actions.

``load``: starts ``cem serve`` in a child process on loopback and, once its models are
loaded and its caches warm, sends ``--rate`` requests/s for ``--seconds`` from this
process (open loop: requests leave on schedule whether or not earlier ones returned;
latency counts from the scheduled time) to the precomputed customer view and to
``?fresh=true``; prints p50/p99 latency, errors, the server's CPU per request and how
late the generator itself sent (its timer wakes up to a millisecond late).
Goals (issue 6): fresh p50 <= 5 ms, p99 <= 15 ms; precomputed p99 <= 5 ms; no errors.
It needs a data folder where `cem train` and `cem score` ran (``--data-dir``).

    .venv/bin/python bench/bench_service.py write [--customers 1000000] [--actions 50000] [--url URL]
    .venv/bin/python bench/bench_service.py load --data-dir data [--rate 200] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from features.services import CHURN_SERVICE
from serving.db.write import RunMeta, ScoringRun, make_engine, write_scoring_run

META = RunMeta({"churn": "3", "nps": "2", "uplift": "1"}, CHURN_SERVICE, "md5:bench", {"bench": True})
REASONS = json.dumps(
    [
        {
            "concept": "support",
            "label": "Support friction",
            "impact": 0.81,
            "sentence": "3 tickets unresolved in the last 90 days, 1 ticket open now",
        },
        {
            "concept": "price",
            "label": "Price",
            "impact": 0.32,
            "sentence": "price up 12 % in the last 90 days",
        },
        {
            "concept": "usage",
            "label": "Usage",
            "impact": 0.2,
            "sentence": "usage down 40 % on the previous 3 months",
        },
    ]
)


def synthetic_run(customers: int, actions: int, events: int, seed: int = 0) -> ScoringRun:
    """A run shaped like the batch scorer's output at scale (vectorised, seconds)."""
    rng = np.random.default_rng(seed)
    ids = pd.Series(np.char.add("C", np.char.zfill(np.arange(customers).astype(str), 7)))
    reps = pd.Series(np.char.add("R", np.char.zfill((np.arange(customers) // 400).astype(str), 4)))
    p = rng.uniform(0, 1, customers)
    planned = np.zeros(customers, bool)
    planned[rng.choice(customers, actions, replace=False)] = True
    tiers = np.array(["low", "medium", "high"])[np.digitize(p, [0.2, 0.5])]
    nps = rng.uniform(0, 10, customers)
    nps_class = np.array(["detractor", "passive", "promoter"])[np.digitize(nps, [6.5, 8.5])]
    stage = np.array(["onboarding", "growing", "loyal", "at-risk", "lapsing"])[rng.integers(0, 5, customers)]
    cust = pd.DataFrame(
        {
            "customer_id": ids,
            "rep_id": reps,
            "churn_probability": p,
            "churn_risk_tier": tiers,
            "predicted_nps": nps,
            "nps_class": nps_class,
            "p_detractor": p / 2,
            "p_passive": 0.3,
            "p_promoter": 0.7 - p / 2,
            "last_nps": np.where(rng.uniform(size=customers) < 0.2, 7.0, np.nan),
            "relationship_stage": stage,
            "value_at_risk": rng.uniform(100, 2000, customers),
            "reasons": np.where(planned, REASONS, None),
            "recommended_action": np.where(planned, "service_recovery_call", None),
            "expected_value": np.where(planned, 12.5, np.nan),
            "latest_comment": np.where(
                rng.uniform(size=customers) < 0.05, "slow support, thinking of leaving", None
            ),
            "alert": None,
        }
    )
    plan = cust[planned].copy()
    plan["rank"] = plan.groupby("rep_id").cumcount() + 1
    plan = plan.assign(
        action_id="service_recovery_call",
        action_label="Service recovery call",
        channel="phone",
        p_churn=plan["churn_probability"],
        uplift=0.06,
        cost=40.0,
        why="unresolved tickets: a recovery call addresses them",
        control_group=rng.uniform(size=len(plan)) < 0.1,
    )
    tags = cust[["customer_id", "relationship_stage", "churn_risk_tier", "nps_class"]].assign(
        p_churn=p,
        nps_score=nps,
        nps_source="predicted",
        usage_drop_ratio=rng.uniform(0, 1.2, customers),
        tenure_days=rng.integers(10, 3000, customers).astype(float),
    )
    changed = rng.integers(0, customers, events)
    events = pd.DataFrame(
        {
            "customer_id": ids.iloc[changed].to_numpy(),
            "tag": "churn_risk_tier",
            "old_value": None,
            "new_value": tiers[changed],
            "cause": "first assignment: churn probability 0.31 (high tier)",
        }
    )
    alerted = rng.choice(customers, customers // 1000, replace=False)
    alerts = pd.DataFrame(
        {
            "customer_id": ids.iloc[alerted].to_numpy(),
            "rep_id": reps.iloc[alerted].to_numpy(),
            "kind": "usage_drop",
            "reason": "usage fell 60 % last month",
        }
    )
    return ScoringRun(date(2025, 1, 6), META, cust, plan, tags, events, alerts)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def bench_write(args) -> None:
    started = time.perf_counter()
    events = 3 * args.customers if args.events is None else args.events
    run = synthetic_run(args.customers, args.actions, events)
    built = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'serving.db'}"
        engine = make_engine(url)
        started = time.perf_counter()
        write_scoring_run(engine, run)
        first = time.perf_counter() - started
        started = time.perf_counter()
        write_scoring_run(engine, run)  # the same date again: replaces the run
        again = time.perf_counter() - started
        engine.dispose()
    print(
        f"synthetic frames: {args.customers:,} customers, {args.actions:,} actions, "
        f"{len(run.tag_events):,} tag events, {len(run.alerts):,} alerts (built in {built:.1f} s)"
    )
    print(
        f"write_scoring_run ({url.split(':')[0]}): first run {first:.1f} s, same date again "
        f"(replace) {again:.1f} s; peak RSS {peak_rss_gb():.2f} GB"
    )


# ------------------------------------------------------------------ load


class Conn:
    """One keep-alive HTTP/1.1 connection (a minimal client: the generator's own cost stays small)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def get(self, path: str, headers: bytes) -> int:
        self.writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: bench\r\n" + headers + b"\r\n")
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await self.reader.readexactly(length)
        return status


async def _open_loop(port: int, paths: list[str], token: str, rate: float, seconds: float) -> dict:
    """Requests leave on a fixed schedule; latency counts from the scheduled time (open loop)."""
    headers = f"Authorization: Bearer {token}\r\n".encode()
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(Conn(*await asyncio.open_connection("127.0.0.1", port)))
    latencies, lags, errors, total = [], [], [], int(rate * seconds)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1

    async def one(i: int, due: float) -> None:
        lags.append(loop.time() - due)  # the generator's own lateness (timer granularity, scheduling)
        conn = await pool.get()
        try:
            status = await conn.get(paths[i % len(paths)], headers)
            if status != 200:
                errors.append(status)
        except Exception as err:  # a broken connection is an error, and is replaced
            errors.append(type(err).__name__)
            conn = Conn(*await asyncio.open_connection("127.0.0.1", port))
        latencies.append(loop.time() - due)
        pool.put_nowait(conn)

    pending: set[asyncio.Task] = set()  # only what is in flight: gathering every task at the end
    for i in range(total):  # stalled the generator for ~150 ms, and the last requests with it
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    elapsed = loop.time() - start
    while not pool.empty():
        pool.get_nowait().writer.close()
    ms, lag = np.array(latencies) * 1000, np.array(lags) * 1000
    return {
        "requests": total,
        "errors": len(errors),
        "error_kinds": sorted({str(e) for e in errors}),
        "rate": total / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
        "lag_p50": float(np.percentile(lag, 50)),
        "lag_p99": float(np.percentile(lag, 99)),
        "lag_max": float(lag.max()),
    }


def _readyz(base: str) -> dict:
    import httpx

    return httpx.get(f"{base}/readyz", timeout=5).json()


def _wait_ready(base: str, timeout: float = 900.0) -> dict:
    """Until the models are loaded and the fresh-score and view caches are warm."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = _readyz(base)
        except Exception:  # not up yet
            body = None
        if body and body["fresh_cache"].get("error"):
            raise RuntimeError(f"fresh-score cache warm-up failed: {body['fresh_cache']['error']}")
        views = body and body["view_cache"]
        if body and body["models"]["loaded"] and body["fresh_cache"]["finished"] and (
            views["warmed_run"] or views["size"] == 0
        ):
            return body
        time.sleep(1.0)
    raise TimeoutError(f"service at {base} not ready with a warm cache in {timeout:.0f}s")


def bench_load(args) -> None:
    import subprocess

    from configs.settings import load_settings
    from pipelines.serve import issue_demo_tokens
    from serving.db.read import run_customers
    from serving.db.runs import current_run
    from serving.db.schema import engine_for

    settings = load_settings(data_dir=args.data_dir)
    _, tokens = issue_demo_tokens(settings)
    engine = engine_for(settings)
    run = current_run(engine)
    customers = run_customers(engine, run.run_id, 100_000)
    engine.dispose()
    rng = np.random.default_rng(0)
    ids = [customers[i] for i in rng.integers(0, len(customers), int(args.rate * args.seconds))]
    port = _free_port()
    log = open(Path(tempfile.gettempdir()) / f"bench_service_{port}.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from pipelines.cli import app; app(['serve', '--port', '{port}', "
            f"'--data-dir', r'{args.data_dir}'])",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = _wait_ready(f"http://127.0.0.1:{port}")
        print(
            f"service up: {len(customers):,} customers in run {run.run_id} (as of {run.as_of}); fresh cache "
            f"warmed with {ready['fresh_cache']['customers']:,} in {ready['fresh_cache']['seconds']:.1f} s, "
            f"view cache with {ready['view_cache']['cached']:,}; "
            f"server log {log.name}"
        )
        for name, query in (("precomputed", ""), ("fresh=true", "?fresh=true")):
            paths = [f"/v1/customers/{c}{query}" for c in ids]
            asyncio.run(_open_loop(port, paths[:200], tokens["manager"], args.rate, 2.0))  # warm-up
            cpu, load = _cpu_seconds(server.pid), os.getloadavg()[0]
            res = asyncio.run(_open_loop(port, paths, tokens["manager"], args.rate, args.seconds))
            res["cpu_ms"] = (_cpu_seconds(server.pid) - cpu) * 1000 / res["requests"]
            res["load"] = (load + os.getloadavg()[0]) / 2
            print(
                f"{name:<12} {res['requests']:,} requests at {res['rate']:.0f}/s: p50 {res['p50']:.2f} ms, "
                f"p90 {res['p90']:.2f} ms, p99 {res['p99']:.2f} ms, max {res['max']:.1f} ms, "
                f"errors {res['errors']} {res['error_kinds'] or ''}; "
                f"server CPU {res['cpu_ms']:.2f} ms/request, machine load average {res['load']:.1f}; "
                f"sent late by the generator: p50 {res['lag_p50']:.2f} ms, p99 {res['lag_p99']:.2f} ms"
            )
        views = _readyz(f"http://127.0.0.1:{port}")["view_cache"]
        print(f"view cache after both cases: {views['cached']:,} customers held, {views['hits']:,} hits, "
              f"{views['misses']:,} misses (views read from the database on request)")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    write = sub.add_parser("write", help="bulk write of a scoring run")
    write.add_argument("--customers", type=int, default=1_000_000)
    write.add_argument("--actions", type=int, default=50_000)
    write.add_argument(
        "--events",
        type=int,
        default=None,
        help="tag events (default 3 per customer: a first run assigns every tag)",
    )
    write.add_argument("--url", default=None, help="SQLAlchemy URL (default: a temporary SQLite file)")
    load = sub.add_parser("load", help="latency under load over loopback")
    load.add_argument("--data-dir", type=Path, required=True)
    load.add_argument("--rate", type=float, default=200.0)
    load.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.part == "write":
        bench_write(args)
    else:
        bench_load(args)


if __name__ == "__main__":
    main(sys.argv[1:])

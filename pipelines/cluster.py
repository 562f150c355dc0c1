"""Where the heavy stages run: in this process, or on a Dask cluster (``cluster`` settings).

One setting decides it, ``cluster.address`` (``CEM_CLUSTER__ADDRESS``): empty runs every stage
in the `cem` process exactly as without Dask; ``local`` starts a ``distributed.LocalCluster``
for the run (``workers`` processes of ``threads_per_worker`` threads, ``memory_limit`` each)
and stops it afterwards; ``tcp://host:8786`` connects to a scheduler someone else runs, and
leaves it running. The flows then use Prefect's ``DaskTaskRunner`` on that scheduler, and the
stages that split by customer (so far the world's simulation) send their pieces to the
workers. Workers read and write the data folders by path: on a real cluster ``data_dir``
must be a file system every worker mounts at the same path (docs/cluster.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path

from prefect import task

from configs.settings import ClusterParams

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0   # an existing scheduler that does not answer in this time is down
COMBINE_TASKS = 4                # tasks copying the simulated world's parts into its files


class ClusterUnreachable(RuntimeError):
    """The configured scheduler does not answer (one line for the `cem` error report)."""


@contextmanager
def cluster_client(params: ClusterParams, announce: Callable[[str], None] | None = None,
                   timeout: float | None = None,
                   dashboard_address: str = ":8787", quiet: bool = False) -> Iterator[object | None]:
    """``None`` for the in-process setting, else a ``distributed.Client`` for the run.

    ``announce`` receives one line naming the scheduler and its dashboard (the CLI prints
    it; without it the line is logged). A LocalCluster started here is closed on exit; an
    existing scheduler only loses this client. ``quiet``: Dask's own INFO lines (workers
    starting and stopping) are not shown, here nor in the LocalCluster's workers.
    """
    if not params.address:
        yield None
        return
    if quiet:
        _quiet_dask()
    from distributed import Client, LocalCluster

    say = announce or log.info
    if params.address == "local":
        # the dashboard falls back to a free port when 8787 is taken (another run on the host)
        cluster = LocalCluster(n_workers=params.workers, threads_per_worker=params.threads_per_worker,
                               memory_limit=params.memory_limit, processes=True,
                               dashboard_address=dashboard_address)
        try:
            with Client(cluster) as client:
                say(describe(client, started=True))
                yield client
        finally:
            cluster.close()
        return
    client = connect(params.address, timeout)
    try:
        say(describe(client, started=False))
        yield client
    finally:
        client.close()


def _quiet_dask() -> None:
    # worker processes inherit the environment, and read Dask's settings from it at import
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    logging.getLogger("distributed").setLevel(logging.WARNING)


def connect(address: str, timeout: float | None = None):
    """A client of the scheduler at ``address``, or one clear line when it does not answer."""
    from distributed import Client

    timeout = timeout or CONNECT_TIMEOUT_SECONDS

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as err:
        raise ClusterUnreachable(
            f"no Dask scheduler answers at {address} within {timeout:g}s "
            f"(cluster.address / CEM_CLUSTER__ADDRESS): {type(err).__name__}") from err


def describe(client, started: bool) -> str:
    """One line: what the run uses and where its dashboard is."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    what = "LocalCluster started" if started else "Dask scheduler"
    line = f"{what} at {client.scheduler.address}: {len(workers)} workers, {threads} threads"
    if started and find_spec("bokeh") is None:
        # distributed serves its dashboard pages only with bokeh installed
        return line + "; dashboard: install bokeh>=3.1 to see it"
    return line + f"; dashboard: {client.dashboard_link}"


def task_runner(client):
    """Prefect's task runner for the flows: Dask's on the client's scheduler, or None (default)."""
    if client is None:
        return None
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=client.scheduler.address)


def on_cluster(flow, client):
    """``flow`` with the Dask task runner when there is a cluster, else ``flow`` itself."""
    runner = task_runner(client)
    return flow if runner is None else flow.with_options(task_runner=runner)


def scheduler_address(client) -> str | None:
    """What a flow is given to reach the cluster (an address survives Prefect's parameters)."""
    return None if client is None else client.scheduler.address


@task(name="simulate-chunk")
def simulate_chunk_task(job):
    """One chunk of customers, on a worker: its tables go to a part folder (by path)."""
    from features.sources.world.parallel import run_chunk

    return run_chunk(job)


def simulate_on_workers(params, raw_dir: Path, truth_dir: Path) -> dict[str, int]:
    """The world's chunks as tasks of the running flow's task runner (Dask's on a cluster),
    then their parts copied, table by table, into the same files as in-process."""
    from prefect.futures import as_completed

    from features.sources.world.parallel import discard, finish, plan_chunks
    from pipelines import progress

    plan = plan_chunks(params, raw_dir, truth_dir)
    total = len(plan.jobs) * params.months
    futures = [simulate_chunk_task.submit(job) for job in plan.jobs]
    results = []
    try:
        for future in as_completed(futures):
            results.append(future.result())
            progress.report(len(results) * params.months, total)
    except BaseException:
        discard(plan, futures)
        raise
    return finish(plan, results, _combine_on_workers).rows


@task(name="combine-tables")
def combine_tables_task(jobs):
    """Tables' parts copied in chunk order into their final files, on a worker."""
    from features.sources.world.parallel import combine_table

    return [combine_table(job) for job in jobs]


def _combine_on_workers(jobs) -> list[int]:
    """A few tasks, not one per table: each Prefect task costs API calls, and the three
    monthly tables (invoices, usage, satisfaction) hold most of the rows anyway."""
    from features.sources.world.parallel import deal

    futures = [combine_tables_task.submit(group) for group in deal(jobs, COMBINE_TASKS)]
    return [rows for future in futures for rows in future.result()]

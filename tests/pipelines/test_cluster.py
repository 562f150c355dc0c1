"""The cluster setting: in-process by default, a LocalCluster or an existing scheduler when
set, one clear line when the scheduler is down; the world simulated on two worker processes
is the in-process world, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import ValidationError

from configs.settings import ClusterParams, SimulateParams, load_settings
from features.sources.world import simulate_world
from features.sources.world.identifiers import renumber
from features.sources.world.parallel import simulate_world_parallel
from pipelines import cluster
from pipelines.cli import main

SMALL = SimulateParams(customers=3500, months=6, seed=11, chunk_customers=1000)   # 4 chunks
DOWN = "tcp://127.0.0.1:1"   # nothing listens on port 1


def test_in_process_by_default():
    assert load_settings().cluster.address == ""
    with cluster.cluster_client(ClusterParams()) as client:
        assert client is None
    assert cluster.task_runner(None) is None


def test_the_address_is_checked(monkeypatch):
    monkeypatch.setenv("CEM_CLUSTER__ADDRESS", "my-scheduler:8786")
    with pytest.raises(ValidationError, match="cluster.address"):
        load_settings()
    monkeypatch.setenv("CEM_CLUSTER__ADDRESS", "tcp://10.0.0.5:8786")
    assert load_settings().cluster.address == "tcp://10.0.0.5:8786"


def test_an_unreachable_scheduler_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setenv("CEM_CLUSTER__ADDRESS", DOWN)
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--customers", "100", "--data-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    out = capsys.readouterr()
    lines = (out.out + out.err).strip().splitlines()
    assert len(lines) <= 2, lines
    assert lines[0].startswith("cem simulate failed:") and DOWN in lines[0]
    assert not (tmp_path / "raw").exists()


def test_identifiers_shift_by_prefix_and_others_stay():
    ids = ["T000000000", "O000000009", None, "plan-20240301-C0000001", "INV202401-000000002",
           "INV202402-000000002", "X000000001", "TX00000001", "T999999999"]
    offsets = {"T": 5, "O": 1_000, "INV202401-": 0, "INV202402-": 7, "X": 0}
    shifted = ["T000000005", "O000001009", None, "plan-20240301-C0000001", "INV202401-000000002",
               "INV202402-000000009", "X000000001", "TX00000001", "T1000000004"]
    tab = pa.table({"id": ids, "n": range(len(ids))})
    assert renumber(tab, ["id"], offsets).column("id").to_pylist() == shifted
    # in place on the bytes of a slice too; an id that outgrows 9 digits takes the slow path
    assert renumber(tab.slice(1, 6), ["id"], offsets).column("id").to_pylist() == shifted[1:7]
    assert renumber(tab, ["id"], {"T": 0}).column("id").to_pylist() == ids


@pytest.fixture(scope="module")
def local_client():
    """A LocalCluster of 2 single-thread worker processes, as `cluster.address: local` starts."""
    params = ClusterParams(address="local", workers=2, threads_per_worker=1, memory_limit="1GB")
    lines: list[str] = []
    with cluster.cluster_client(params, announce=lines.append, dashboard_address=":0",
                                quiet=True) as client:
        client.lines = lines
        yield client


@pytest.fixture(scope="module")
def in_process_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("in_process")
    simulate_world(SMALL, root / "raw", root / "truth")
    return root


def same_files(a: Path, b: Path) -> None:
    """Every file byte-identical; world.json apart from the folders it names."""
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert any(n.name == "chunk_00003.npz" for n in names)
    for name in names:
        if name.name == "world.json":
            drop = lambda d: {k: v for k, v in d.items() if k not in ("raw_dir", "truth_dir")}  # noqa: E731
            assert drop(json.loads((a / name).read_text())) == drop(json.loads((b / name).read_text()))
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_local_cluster_starts_with_the_settings(local_client):
    info = local_client.scheduler_info()["workers"]
    assert len(info) == 2 and all(w["nthreads"] == 1 for w in info.values())
    assert local_client.lines[0].startswith("LocalCluster started at tcp://")
    assert "dashboard" in local_client.lines[0]


def test_chunks_on_two_workers_write_the_in_process_world(local_client, in_process_world, tmp_path):
    reports = []
    simulate_world_parallel(SMALL, tmp_path / "raw", tmp_path / "truth",
                            local_client.get_executor(), on_progress=lambda i, n: reports.append((i, n)))
    same_files(in_process_world, tmp_path)
    assert reports[-1] == (4 * SMALL.months, 4 * SMALL.months)
    assert not (tmp_path / "truth" / ".simulate-parts").exists()


def test_the_flow_on_the_dask_task_runner_writes_the_same_world(local_client, in_process_world,
                                                                 tmp_path):
    from pipelines.flows import simulate_flow

    # an existing scheduler: this test's client connects to the LocalCluster by its address
    with cluster.cluster_client(ClusterParams(address=local_client.scheduler.address)) as client:
        assert client.scheduler.address == local_client.scheduler.address
        rows = cluster.on_cluster(simulate_flow, client)(SMALL, tmp_path / "raw", tmp_path / "truth",
                                                         on_cluster=True)
    same_files(in_process_world, tmp_path)
    assert rows["crm_customers"] == SMALL.customers
    assert local_client.scheduler_info()["workers"]   # the scheduler outlives the client

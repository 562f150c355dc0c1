"""The scoring client fetches each bucket's result as its task ends and releases it on the
worker (a worker then holds the bucket it scores, not every bucket it has scored), keeps the
buckets' order, and raises a bucket's failure only once every task has ended (no bucket
still writes into a run that is being removed)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from serving.cluster_scoring import gather_as_done

pytestmark = pytest.mark.slow


def scored(i: int) -> np.ndarray:
    return np.full(1000, i)


def released(key: str, seconds: float = 20.0) -> bool:
    """On a worker: whether the cluster drops ``key`` while this task still runs."""
    from distributed import get_client

    client = get_client()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not client.who_has([key]).get(key):
            return True
        time.sleep(0.05)
    return False


def test_results_come_in_order_and_leave_the_workers_as_they_end(two_worker_client):
    first = two_worker_client.submit(scored, 7, key="bucket-0-gather-test", pure=False)
    later = two_worker_client.submit(released, first.key, pure=False)
    out = gather_as_done([first, later])
    assert (out[0] == 7).all() and len(out[0]) == 1000
    assert out[1] is True      # the first bucket's result was dropped while the second ran


def fails() -> None:
    raise ValueError("bucket 0: no feature rows")


def slow_then_mark(marker: str) -> int:
    time.sleep(1.0)
    Path(marker).write_text("done")
    return 1


def test_a_failure_is_raised_after_every_task_ended(two_worker_client, tmp_path):
    marker = tmp_path / "ended"
    futures = [two_worker_client.submit(fails, pure=False),
               two_worker_client.submit(slow_then_mark, str(marker), pure=False)]
    with pytest.raises(ValueError, match="no feature rows"):
        gather_as_done(futures)
    assert marker.read_text() == "done"

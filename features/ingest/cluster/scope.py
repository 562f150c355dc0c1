"""Which Dask scheduler a full ``run_ingest`` sends its partitions to (None: this process).

``cem ingest`` opens the cluster and runs the ingest flow inside ``ingest_on(address)``
(``cem cycle``'s flow, its incremental ingest); the flow's task calls ``run_ingest``, which
looks here. A context variable rather than an argument threaded through the flow: the flow
module is shared wiring, and a run outside ``ingest_on`` (tests) stays in-process whatever
else holds a Dask client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_SCHEDULER: ContextVar[str | None] = ContextVar("cem_ingest_scheduler", default=None)


@contextmanager
def ingest_on(scheduler: str | None) -> Iterator[None]:
    """Ingests inside the block run on ``scheduler``'s workers (None: in-process)."""
    token = _SCHEDULER.set(scheduler)
    try:
        yield
    finally:
        _SCHEDULER.reset(token)


def current_scheduler() -> str | None:
    return _SCHEDULER.get()

"""Stage outputs are written whole or not at all.

A stage writes into a staging folder next to its final folder
(``.<name>.staging``); only when the stage succeeds is it swapped in by two
renames (final -> ``.<name>.previous``, staging -> final), and the previous output
is removed last. A stage that fails removes its staging folder and leaves the
previous output as it was. A stage killed outright (``kill -9``) leaves debris
that the next run of the same stage clears first (:func:`recover`): a staging
folder is deleted, and a swap that did not finish is rolled back.

A single file (the Feast registry) is staged as a copy beside it and moved over
the final file with one atomic ``os.replace``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

STAGING = ".staging"
PREVIOUS = ".previous"


def staging_path(final: Path) -> Path:
    """Where a stage writes before the swap: a hidden sibling of ``final``."""
    return final.parent / f".{final.name}{STAGING}"


def previous_path(final: Path) -> Path:
    """Where the previous output waits while the new one is swapped in."""
    return final.parent / f".{final.name}{PREVIOUS}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def recover(final: Path) -> None:
    """Clear what a killed stage left: its staging copy, and an unfinished swap (rolled back)."""
    _remove(staging_path(final))
    previous = previous_path(final)
    if previous.exists():
        _remove(final)
        previous.rename(final)


def _swap_in(staging: Path, final: Path) -> None:
    if final.exists():
        final.rename(previous_path(final))
    staging.rename(final)


def _roll_back(final: Path) -> None:
    previous = previous_path(final)
    _remove(final)
    if previous.exists():
        previous.rename(final)


@contextmanager
def staged(final: Path, *, file: bool = False, seed: bool = False,
           after_swap: Callable[[], None] | None = None) -> Iterator[Path]:
    """Yield a staging folder for the folder ``final`` (a staging file path with ``file``);
    swap it in when the block succeeds.

    ``seed``: start from a copy of the current output (for a store updated in place).
    ``after_swap``: work that must see the new folder at its final path; if it fails the
    previous output is put back, so the stage is still all or nothing.
    """
    final = Path(final)
    recover(final)
    staging = staging_path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if seed and final.exists():
        (shutil.copy2 if file else shutil.copytree)(final, staging)
    elif not file:
        staging.mkdir()
    try:
        yield staging
    except BaseException:
        _remove(staging)
        raise
    if file:
        if staging.exists():
            os.replace(staging, final)
        return
    _swap_in(staging, final)
    if after_swap is not None:
        try:
            after_swap()
        except BaseException:
            _roll_back(final)
            raise
    _remove(previous_path(final))

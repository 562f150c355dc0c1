"""A step is all or nothing: interrupted anywhere (an exception, a killed process), the world
is the one before the step or the one after it, and the next step writes what an
uninterrupted run writes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from features.sources.world import export, journal, step
from features.sources.world.state import load_world
from features.sources.world.step import advance_world
from tests.conftest import make_world

WORLD = {"customers": 1500, "months": 6, "seed": 11, "chunk_customers": 1000}  # two chunks
TARGETS = 17     # 9 exports, 6 truth tables, plan_delivery and the saved state


class Boom(RuntimeError):
    pass


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    root = make_world(tmp_path_factory.mktemp("safety"), **WORLD)
    crm = pd.read_parquet(root / "raw" / "crm_customers.parquet")
    open_ = crm[crm["status"].eq("active") & crm["notice_date"].isna()].head(200)
    pd.DataFrame({"customer_id": open_["customer_id"], "action_id": "apology_credit",
                  "rep_id": open_["rep_id"], "rank": range(len(open_)),
                  "control_group": [i % 4 == 0 for i in range(len(open_))]}
                 ).to_parquet(root / "plan.parquet")
    return root


def _step(world: Path) -> None:
    advance_world(world / "truth", world / "raw", pd.read_parquet(world / "plan.parquet"),
                  capacity=30)


def _files(world: Path) -> dict[str, bytes]:
    """Every file of the exports and the truth (saved state included), byte for byte."""
    return {p.relative_to(world).as_posix(): p.read_bytes()
            for p in sorted(world.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clean(base, tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """The world before a step, after one clean step, and after two."""
    world = tmp_path_factory.mktemp("clean") / "w"
    shutil.copytree(base, world)
    states = {"before": _files(world)}
    _step(world)
    states["after"] = _files(world)
    _step(world)
    states["after_two"] = _files(world)
    return states


def _copy(base: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(base, tmp_path / "w"))


def _fail_on_call(monkeypatch, module, name: str, k: int) -> None:
    """``module.name`` raises on its ``k``-th call (0-based), after doing the earlier ones."""
    real = getattr(module, name)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) > k:
            raise Boom(f"{name} failed after {k} calls")
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, flaky)


def _assert_recovers(world: Path, clean: dict, monkeypatch) -> None:
    """The failed step changed nothing; stepping again writes what a clean run writes."""
    assert _files(world) == clean["before"]
    monkeypatch.undo()
    _step(world)
    assert _files(world) == clean["after"]


def test_the_clean_step_is_what_the_safety_tests_compare_with(clean):
    assert clean["after"] != clean["before"]
    assert not any(".step-" in name or "journal" in name for name in clean["after"])
    changed = {n for n in clean["after"] if clean["after"][n] != clean["before"].get(n)}
    assert len({n.split("/world_state")[0] for n in changed}) == TARGETS   # tables + state


FAILURES = [  # (module, function, the call that raises): swaps, writing aside, state, commit
    *[("journal", "_swap", k) for k in (0, 1, 7, TARGETS - 1)],
    ("export", "aside", 0), ("export", "aside", 5),
    ("step", "write_state", 0),
    ("journal", "_mark_committed", 0),
]


@pytest.mark.parametrize(("module", "name", "k"), FAILURES,
                         ids=[f"{m}.{n}#{k}" for m, n, k in FAILURES])
def test_a_failure_before_the_commit_point_changes_nothing(base, clean, tmp_path, monkeypatch,
                                                           module, name, k):
    """Every file rolls back: the world is the clean step's "before", and recovers."""
    world = _copy(base, tmp_path)
    _fail_on_call(monkeypatch, {"journal": journal, "export": export, "step": step}[module], name, k)
    with pytest.raises(Boom):
        _step(world)
    _assert_recovers(world, clean, monkeypatch)


def test_a_failed_rollback_is_finished_on_the_next_load(base, clean, tmp_path, monkeypatch):
    """An exception whose own rollback fails leaves the journal: the next load rolls back."""
    world = _copy(base, tmp_path)
    _fail_on_call(monkeypatch, journal, "_swap", 5)
    monkeypatch.setattr(journal, "roll_back_now", lambda truth_dir: None)
    with pytest.raises(Boom):
        _step(world)
    assert journal.journal_path(world / "truth").exists()
    assert _files(world) != clean["before"]               # half swapped, until the next load
    monkeypatch.undo()
    load_world(world / "truth")
    assert _files(world) == clean["before"]
    _step(world)
    assert _files(world) == clean["after"]


KILLER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import pandas as pd
    from features.sources.world import export, journal
    from features.sources.world.step import advance_world

    world, where, k = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    calls = []

    def killing(module, name, half=None):
        real = getattr(module, name)
        def wrapped(*args, **kwargs):
            calls.append(1)
            if len(calls) > k:
                if half:
                    half(*args)
                os._exit(9)                       # a kill: no except, no finally
            return real(*args, **kwargs)
        setattr(module, name, wrapped)

    def half_swap(target):                        # the old version moved aside, not the new in
        if target.is_dir():
            target.rename(journal.backup(target))
        else:
            os.link(target, journal.backup(target))

    if where == "aside":
        killing(export, "aside")
    elif where == "swap":
        killing(journal, "_swap")
    elif where == "half_swap":
        killing(journal, "_swap", half_swap)
    else:
        killing(journal, where)
    advance_world(world / "truth", world / "raw", pd.read_parquet(world / "plan.parquet"),
                  capacity=30)
    sys.exit(0)
""")


def _kill_during_step(world: Path, where: str, k: int) -> None:
    root = Path(__file__).resolve().parents[4]
    done = subprocess.run([sys.executable, "-c", KILLER, str(world), where, str(k)], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 9, done.stderr


@pytest.mark.parametrize(("where", "k"), [
    ("aside", 3), ("swap", 0), ("swap", 6), ("half_swap", 6), ("half_swap", TARGETS - 1),
    ("_mark_committed", 0),
])
def test_a_step_killed_before_its_commit_is_undone_on_the_next_load(base, clean, tmp_path,
                                                                     where, k):
    world = _copy(base, tmp_path)
    _kill_during_step(world, where, k)
    assert journal.journal_path(world / "truth").exists()
    load_world(world / "truth")
    assert _files(world) == clean["before"]
    _step(world)
    assert _files(world) == clean["after"]


def test_a_step_killed_after_its_commit_has_happened(base, clean, tmp_path):
    """Killed while cleaning up: the step stands, the next load finishes the clean-up, and
    the next step is the second month of an uninterrupted run."""
    world = _copy(base, tmp_path)
    _kill_during_step(world, "_finish", 0)
    assert journal.journal_path(world / "truth").exists()
    load_world(world / "truth")
    assert _files(world) == clean["after"]
    _step(world)
    assert _files(world) == clean["after_two"]


def test_a_new_simulation_forgets_an_interrupted_step(base, tmp_path):
    world = _copy(base, tmp_path)
    _kill_during_step(world, "swap", 4)
    again = make_world(tmp_path / "again", **WORLD)
    make_world(world, **WORLD)
    assert not journal.journal_path(world / "truth").exists()
    load_world(world / "truth")
    def files(root: Path) -> dict[str, bytes]:     # world.json names the folders
        return {n: b for n, b in _files(root).items() if n not in ("plan.parquet", "truth/world.json")}
    assert files(world) == files(again)

"""A stepped month is all or nothing: every export, truth table and the saved state move
together from the old month to the new one, whatever the moment a step is interrupted.

The protocol (design: docs/world.md, "Crash safety"):

1. ``begin``: stale leftovers of the targets are removed, then the **journal**
   (``<truth>/step-journal.json``: every target, relative to the truth folder, and whether
   it existed) is written atomically (a temporary file renamed over it).
2. The step writes every new file aside: ``<name>.step-new`` (a folder for the saved state).
3. ``commit``: each old file is kept as a backup ``<name>.step-old`` (a hard link, so the
   target path never goes missing; a folder is renamed), then the new file is renamed over
   the target (``os.replace``: a reader sees the old file or the new one, never a partial
   one). Marking the journal ``committed`` (rewritten atomically) is the commit point;
   then the backups and the journal are removed.

Until the commit point the step has not happened: ``recover`` (run by ``state.load_world``,
so by the next step) puts every backup back, removes what the step added and any file
written aside, then removes the journal. An exception rolls back at once; a killed process
is rolled back on the next load. Re-running the step then writes the same bytes as a run
that was never interrupted (the saved random streams are the old ones). After the commit
point, ``recover`` only finishes the clean-up: the step has happened.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

JOURNAL = "step-journal.json"
NEW, OLD = ".step-new", ".step-old"


def aside(path: Path) -> Path:
    """Where a target's new version is written before the swap."""
    return path.with_name(path.name + NEW)


def backup(path: Path) -> Path:
    """Where a target's old version is kept until the commit."""
    return path.with_name(path.name + OLD)


def journal_path(truth_dir: Path) -> Path:
    return Path(truth_dir) / JOURNAL


def begin(truth_dir: Path, targets: list[Path]) -> None:
    """Record the step's targets before any new file is written."""
    if journal_path(truth_dir).exists():
        raise RuntimeError(f"an interrupted step is pending in {truth_dir}: load the world first")
    for target in targets:
        _remove(aside(target))
        _remove(backup(target))
    root = Path(truth_dir).resolve()
    entries = [{"path": os.path.relpath(Path(t).resolve(), root), "existed": Path(t).exists()}
               for t in targets]
    _write_journal(truth_dir, {"committed": False, "targets": entries})


def commit(truth_dir: Path, targets: list[Path]) -> None:
    """Swap every target's new version in; on any error put the old ones back and re-raise."""
    try:
        for target in targets:
            _sync(aside(target))
        for target in targets:
            _swap(target)
        for folder in {Path(t).parent for t in targets}:
            _sync_dir(folder)
        _mark_committed(truth_dir)
    except BaseException:
        roll_back_now(truth_dir)
        raise
    _finish(truth_dir)


def recover(truth_dir: Path) -> bool:
    """Settle an interrupted step: undone before its commit point, its clean-up finished
    after it. True if a step was undone."""
    path = journal_path(truth_dir)
    if not path.exists():
        return False
    root = Path(truth_dir)
    journal = json.loads(path.read_text())
    if journal["committed"]:
        _finish(truth_dir)
        return False
    for entry in reversed(journal["targets"]):
        target = root / entry["path"]
        old = backup(target)
        if old.exists():
            if target.is_dir():
                shutil.rmtree(target)
            if target.exists() and os.path.samefile(old, target):
                old.unlink()               # linked, not yet swapped (rename would keep both)
            else:
                os.replace(old, target)    # a file: atomic; a folder: target is gone by now
        elif not entry["existed"]:
            _remove(target)                # a table the step created
        _remove(aside(target))
    path.unlink()
    _sync_dir(root)
    log.warning("rolled back an interrupted world step in %s", truth_dir)
    return True


def discard(truth_dir: Path) -> None:
    """Forget an interrupted step without restoring anything (the world is rewritten whole)."""
    path = journal_path(truth_dir)
    if not path.exists():
        return
    for entry in json.loads(path.read_text())["targets"]:
        target = Path(truth_dir) / entry["path"]
        _remove(aside(target))
        _remove(backup(target))
    path.unlink()


def roll_back_now(truth_dir: Path) -> None:
    """After an exception in the step: roll back at once (if that fails too, the journal
    stays and the next load rolls back)."""
    try:
        recover(truth_dir)
    except Exception:
        log.exception("could not roll back the world step in %s; the next load will", truth_dir)


def _swap(target: Path) -> None:
    new, old = aside(target), backup(target)
    if target.is_dir():
        target.rename(old)
    elif target.exists():
        try:
            os.link(target, old)
        except OSError:                    # a file system without hard links
            shutil.copy2(target, old)
    os.replace(new, target)


def _mark_committed(truth_dir: Path) -> None:
    """The commit point: once the journal says so, the step has happened."""
    journal = json.loads(journal_path(truth_dir).read_text())
    _write_journal(truth_dir, journal | {"committed": True})


def _finish(truth_dir: Path) -> None:
    """After the commit point: the backups, then the journal, go."""
    path = journal_path(truth_dir)
    for entry in json.loads(path.read_text())["targets"]:
        target = Path(truth_dir) / entry["path"]
        _remove(backup(target))
        _remove(aside(target))
    path.unlink()
    _sync_dir(Path(truth_dir))


def _write_journal(truth_dir: Path, journal: dict) -> None:
    """Written whole or not at all: a temporary file, flushed, renamed over the journal."""
    path = journal_path(truth_dir)
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(journal, indent=1)
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _sync_dir(path.parent)


def _sync(path: Path) -> None:
    """Flush a new file (or every file of a new folder) to disk before it is swapped in."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as f:
            os.fsync(f.fileno())
    if path.is_dir():
        _sync_dir(path)


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:                        # some file systems cannot sync a folder
        pass
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()

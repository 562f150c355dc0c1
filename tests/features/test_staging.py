"""`staged`: a stage's output is swapped in whole, or the previous output stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.staging import previous_path, staged, staging_path


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def final(tmp_path) -> Path:
    out = tmp_path / "clean"
    out.mkdir()
    (out / "a.parquet").write_bytes(b"old a")
    (out / "b.parquet").write_bytes(b"old b")
    return out


def test_success_swaps_in_the_new_output_only(final):
    with staged(final) as out:
        (out / "a.parquet").write_bytes(b"new a")
    assert _tree(final) == {"a.parquet": b"new a"}
    assert not staging_path(final).exists() and not previous_path(final).exists()


def test_a_failure_mid_stage_leaves_the_previous_output(final):
    before = _tree(final)
    with pytest.raises(RuntimeError), staged(final) as out:
        (out / "a.parquet").write_bytes(b"half")
        raise RuntimeError("boom")
    assert _tree(final) == before and not staging_path(final).exists()


def test_a_failure_after_the_swap_puts_the_previous_output_back(final):
    before = _tree(final)

    def fail() -> None:
        assert _tree(final) == {"a.parquet": b"new"}   # the work sees the new output
        raise RuntimeError("registry")

    with pytest.raises(RuntimeError), staged(final, after_swap=fail) as out:
        (out / "a.parquet").write_bytes(b"new")
    assert _tree(final) == before and not previous_path(final).exists()


def test_debris_of_a_killed_run_is_cleared_and_an_unfinished_swap_rolled_back(final):
    before = _tree(final)
    final.rename(previous_path(final))              # killed between the two renames
    final.mkdir()
    (final / "a.parquet").write_bytes(b"unfinished")
    staging_path(final).mkdir()
    (staging_path(final) / "junk").write_bytes(b"x")
    with pytest.raises(RuntimeError), staged(final):
        raise RuntimeError("fails again")
    assert _tree(final) == before
    assert not staging_path(final).exists() and not previous_path(final).exists()


def test_a_staged_file_starts_from_a_copy_and_replaces_the_file(tmp_path):
    registry = tmp_path / "feast" / "registry.db"
    registry.parent.mkdir()
    registry.write_bytes(b"v1")
    with pytest.raises(RuntimeError), staged(registry, file=True, seed=True) as copy:
        copy.write_bytes(copy.read_bytes() + b"+half")
        raise RuntimeError("apply failed")
    assert registry.read_bytes() == b"v1"
    with staged(registry, file=True, seed=True) as copy:
        copy.write_bytes(copy.read_bytes() + b"+v2")
    assert registry.read_bytes() == b"v1+v2" and list(registry.parent.iterdir()) == [registry]

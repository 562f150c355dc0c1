"""The DVC score stage lists exactly the code it runs: every project module that `cem score`
imports (found by following import statements, function-level ones included), and nothing
else (no templates, no service routes), so a change elsewhere does not re-run scoring."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("configs", "features", "models", "serving", "pipelines")
# What the score flow's task imports (pipelines/flows.py: score_task), and the modules of the
# model classes it unpickles from the registry (their code runs when scoring).
SCORE_ENTRIES = ("serving.batch", "models.prescribe.evaluate", "models.registry",
                 "models.churn.model", "models.nps.model", "models.uplift.model")


def module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported(path: Path) -> set[str]:
    """Project modules named by the import statements of one file (packages' __init__ too)."""
    names: set[str] = set()
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    found = set()
    for name in names:
        if name.split(".")[0] not in PACKAGES:
            continue
        parts = name.split(".")
        found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1) if module_file(".".join(parts[:i]))}
    return found


def closure(entries: tuple[str, ...]) -> set[Path]:
    todo, seen = list(entries), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(imported(module_file(name)))
    files = {module_file(n) for n in seen}
    return {f.relative_to(ROOT) for f in files if not _empty(f)}


def _empty(path: Path) -> bool:
    """A package marker with no code (at most a docstring): listing it would only be noise."""
    if path.name != "__init__.py":
        return False
    body = ast.parse(path.read_text()).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def covered(deps: list[str]) -> set[Path]:
    """Python files a list of DVC deps covers (folders expand to their .py files)."""
    files = set()
    for dep in deps:
        path = ROOT / dep
        if path.is_dir():
            files |= {p.relative_to(ROOT) for p in path.rglob("*.py")
                      if "__pycache__" not in p.parts and not _empty(p)}
        elif path.suffix == ".py":
            files.add(Path(dep))
    return files


def test_score_stage_lists_exactly_the_code_it_imports():
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["score"]
    listed = covered(stage["deps"])
    needed = closure(SCORE_ENTRIES)
    assert not needed - listed, f"score stage misses {sorted(map(str, needed - listed))}"
    assert not listed - needed, f"score stage lists code it does not run {sorted(map(str, listed - needed))}"
    assert not any(Path(d).parts[:2] == ("serving", "templates") for d in stage["deps"])


def test_closure_follows_function_level_imports(tmp_path):
    # pipelines/flows.py imports its steps inside task functions
    assert Path("serving/batch.py") in closure(("pipelines.flows",))
